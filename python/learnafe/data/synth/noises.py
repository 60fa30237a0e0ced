"""Generated background-noise recordings for ``_background_noise_``.

Seven types, each a deterministic function of a generator and a duration:

* ``white_noise``, ``pink_noise``, ``brown_noise``: coloured Gaussian noise
  (power ~ 1/f^0, 1/f, 1/f^2), like the three coloured files of Speech Commands;
* ``babble``: 6 overlapping talkers, each a stream of random words synthesised
  with random voices of the available engines (see :func:`babble`);
* ``running_machine``: mains hum with drifting harmonics, a fan (band-limited
  noise with blade-rate amplitude modulation) and a slow load variation;
* ``running_water``: rain/tap-like noise, a hiss band plus thousands of
  droplet clicks (decaying resonances at random pitch);
* ``room_tone``: a quiet room: ventilation rumble (low-passed brown noise) and a
  faint pink floor.

Levels are set to typical RMS values (-20 to -35 dBFS) so that the silence
class (cut from these with a random gain) spans realistic loudness.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .effects import coloured_noise

__all__ = ["NOISE_TYPES", "make_noise", "babble"]

NOISE_TYPES = ("white_noise", "pink_noise", "brown_noise", "babble", "running_machine",
               "running_water", "room_tone")


def _level(x: np.ndarray, rms_db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))
    y = x * (10.0 ** (rms_db / 20.0) / max(rms, 1e-12))
    peak = float(np.max(np.abs(y)))
    if peak > 0.99:
        y *= 0.99 / peak
    return y.astype(np.float32)


def _machine(rng, n, rate):
    t = np.arange(n) / rate
    mains = rng.choice([50.0, 60.0])
    drift = 1.0 + 0.002 * np.sin(2 * np.pi * t / rng.uniform(7, 15))
    phase = 2 * np.pi * np.cumsum(mains * drift) / rate
    hum = sum(rng.uniform(0.2, 1.0) / k * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
              for k in range(1, 9))
    fan = coloured_noise(rng, n, 0.5)
    lo, hi = rng.uniform(150, 400), rng.uniform(1500, 3500)
    fan = signal.sosfilt(signal.butter(2, [lo, hi], "bandpass", fs=rate, output="sos"), fan)
    blade = rng.uniform(20, 45)
    fan *= 1.0 + 0.35 * np.sin(2 * np.pi * blade * t)
    load = 1.0 + 0.2 * np.sin(2 * np.pi * t / rng.uniform(3, 9))
    x = (0.6 * hum / np.std(hum) + fan / np.std(fan)) * load
    return _level(x, rng.uniform(-26, -20))


def _water(rng, n, rate):
    hiss = coloured_noise(rng, n, 0.3)
    hiss = signal.sosfilt(signal.butter(2, [rng.uniform(300, 800), rng.uniform(5000, 7500)],
                                        "bandpass", fs=rate, output="sos"), hiss)
    x = hiss / np.std(hiss)
    drops = np.zeros(n)
    count = int(rng.uniform(150, 400) * n / rate)  # droplets per second
    pos = rng.integers(0, n, count)
    amp = rng.lognormal(0.0, 0.8, count)
    drops[pos] += amp
    # Each droplet rings at its own pitch: filter groups of them with resonators.
    out = np.zeros(n)
    groups = np.array_split(rng.permutation(count), 12)
    for g in groups:
        imp = np.zeros(n)
        imp[pos[g]] = amp[g]
        f0 = rng.uniform(800, 4500)
        b, a = signal.iirpeak(f0, rng.uniform(8, 25), fs=rate)
        out += signal.lfilter(b, a, imp)
    x = x + 1.5 * out / max(np.std(out), 1e-12)
    gust = 1.0 + 0.3 * np.sin(2 * np.pi * np.arange(n) / rate / rng.uniform(4, 10))
    return _level(x * gust, rng.uniform(-24, -18))


def _room(rng, n, rate):
    rumble = coloured_noise(rng, n, 2.0)
    rumble = signal.sosfilt(signal.butter(2, rng.uniform(120, 300), fs=rate, output="sos"), rumble)
    floor = coloured_noise(rng, n, 1.0)
    x = rumble / np.std(rumble) + 0.3 * floor
    return _level(x, rng.uniform(-42, -34))


def babble(rng: np.random.Generator, n: int, rate: int, render_word, words, voices,
           talkers: int = 6) -> np.ndarray:
    """Overlap ``talkers`` streams of synthesised words into ``n`` samples at ``rate``.

    ``render_word(word, voice, rng) -> float32 audio at rate`` synthesises one
    word; ``voices`` is the pool to draw talkers from.
    """
    out = np.zeros(n)
    for _ in range(talkers):
        voice = voices[int(rng.integers(len(voices)))]
        stream = np.zeros(n)
        pos = int(rng.integers(0, rate // 2))
        while pos < n:
            w = render_word(words[int(rng.integers(len(words)))], voice, rng)
            if w.size:
                w = w / max(float(np.sqrt(np.mean(w.astype(np.float64) ** 2))), 1e-9)
                m = min(w.shape[0], n - pos)
                stream[pos:pos + m] += w[:m] * rng.uniform(0.6, 1.4)
            pos += w.shape[0] + int(rng.uniform(0.02, 0.25) * rate)
        out += stream
    return _level(out, rng.uniform(-26, -20))


def make_noise(kind: str, rng: np.random.Generator, seconds: float, rate: int,
               babble_source=None) -> np.ndarray:
    """Generate ``seconds`` of noise of type ``kind`` (see :data:`NOISE_TYPES`).

    ``babble_source`` is ``(render_word, words, voices)`` for ``kind="babble"``.
    """
    n = int(round(seconds * rate))
    if kind == "white_noise":
        return _level(coloured_noise(rng, n, 0.0), rng.uniform(-22, -18))
    if kind == "pink_noise":
        return _level(coloured_noise(rng, n, 1.0), rng.uniform(-22, -18))
    if kind == "brown_noise":
        return _level(coloured_noise(rng, n, 2.0), rng.uniform(-22, -18))
    if kind == "running_machine":
        return _machine(rng, n, rate)
    if kind == "running_water":
        return _water(rng, n, rate)
    if kind == "room_tone":
        return _room(rng, n, rate)
    if kind == "babble":
        if babble_source is None:
            raise ValueError("make_noise: babble needs babble_source=(render_word, words, voices)")
        return babble(rng, n, rate, *babble_source)
    raise ValueError(f"make_noise: unknown noise type {kind!r}; choose from {NOISE_TYPES}")
