"""Voice/room augmentation (learnafe.data.augment) against independent measurements."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from learnafe.data.augment import (
    VoiceAugment,
    VoiceAugmentConfig,
    formant_warp,
    peaking_sos,
    pitch_shift,
    time_stretch,
    warp_shift_stretch,
)

SR = 20000


def _tone(f0=150.0, n_harm=6, on=(0.25, 0.75)):
    """A harmonic tone burst inside a 1 s clip (silence around it)."""
    t = np.arange(SR) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, n_harm + 1))
    return 0.3 * x * ((t >= on[0]) & (t < on[1]))


def _f0(y):
    """F0 by the autocorrelation peak of the voiced part (independent of the STFT code)."""
    e = np.abs(y) > 0.05 * np.max(np.abs(y))
    i = np.flatnonzero(e)
    seg = y[i[0] + 500:i[-1] - 500]
    ac = signal.fftconvolve(seg, seg[::-1])[seg.size - 1:]
    lo, hi = int(SR / 400), int(SR / 60)
    lag = lo + int(np.argmax(ac[lo:hi]))
    # parabolic refinement
    a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
    lag = lag + 0.5 * (a - c) / (a - 2 * b + c)
    return SR / lag


def _duration(y):
    env = signal.sosfiltfilt(signal.butter(2, 30, fs=SR, output="sos"), np.abs(y))
    on = np.flatnonzero(env > 0.5 * env.max())
    return (on[-1] - on[0]) / SR


@pytest.mark.parametrize("factor", [0.8, 0.9, 1.12, 1.25])
def test_pitch_shift_moves_f0_at_constant_duration(factor):
    x = _tone()
    y = pitch_shift(x, factor)
    assert y.shape == x.shape
    assert _f0(y) / _f0(x) == pytest.approx(factor, rel=0.01)
    assert _duration(y) == pytest.approx(_duration(x), abs=0.015)


@pytest.mark.parametrize("rate", [0.85, 1.18])
def test_tempo_keeps_f0_and_scales_duration(rate):
    x = _tone()
    y = time_stretch(x, rate)
    assert y.shape[0] == round(x.shape[0] / rate)
    assert _f0(y) == pytest.approx(_f0(x), rel=0.01)
    assert _duration(y) == pytest.approx(_duration(x) / rate, rel=0.03)


@pytest.mark.parametrize("pitch, tempo", [(1.12, 0.85), (0.8, 1.18)])
def test_one_pass_shifts_f0_by_pitch_and_duration_by_tempo(pitch, tempo):
    # pitch shift and tempo change in one phase-vocoder pass: F0 moves by the pitch
    # factor only, the duration by 1/tempo only
    x = _tone()
    y = warp_shift_stretch(x, SR, 1.0, pitch, tempo)
    assert y.shape[0] == round(x.shape[0] / tempo)
    assert _f0(y) / _f0(x) == pytest.approx(pitch, rel=0.01)
    assert _duration(y) == pytest.approx(_duration(x) / tempo, rel=0.03)


def test_formant_warp_moves_the_envelope_not_the_pitch():
    # a harmonic source through one resonance at 1 kHz; warp by 1.15 -> the strongest
    # harmonic region moves to about 1.15 kHz, F0 stays
    x = _tone(f0=100.0, n_harm=60)
    sos = signal.butter(2, [900, 1100], "bandpass", fs=SR, output="sos")
    x = signal.sosfilt(sos, x) * 10
    y = formant_warp(x, SR, 1.15)
    assert _f0(y) == pytest.approx(_f0(x), rel=0.01)

    def centroid(z):
        f, p = signal.welch(z, SR, nperseg=2048)
        m = (f > 300) & (f < 3000)
        return np.sum(f[m] * p[m]) / np.sum(p[m])

    assert centroid(y) / centroid(x) == pytest.approx(1.15, rel=0.05)


def test_eq_response_matches_its_design():
    bands = [(300.0, 6.0, 1.0), (2500.0, -9.0, 2.0)]
    sos = peaking_sos(bands, SR)
    imp = np.zeros(1 << 15)
    imp[0] = 1.0
    h = signal.sosfilt(sos, imp)
    f = np.fft.rfftfreq(h.size, 1 / SR)
    mag = 20 * np.log10(np.abs(np.fft.rfft(h)))
    # RBJ peaking filter: the design gain at each centre (the other band adds a little)
    _, hz = signal.sosfreqz(sos, worN=f, fs=SR)
    np.testing.assert_allclose(mag, 20 * np.log10(np.abs(hz)), atol=1e-6)
    for f0, g, _ in bands:
        k = np.argmin(np.abs(f - f0))
        assert mag[k] == pytest.approx(g, abs=0.6)
    assert abs(mag[np.argmin(np.abs(f - 9000))]) < 0.3  # far from both bands: 0 dB


def test_rir_energy_decay_matches_rt60():
    aug = VoiceAugment({"enabled": True}, SR)
    for rt60 in (0.2, 0.5):
        h = aug.rir(rt60, 5.0, seed=3)
        # the tail darkens with time (wall absorption), so the decay is measured in the
        # band the darkening leaves alone (octaves 250 Hz - 2 kHz)
        sos = signal.butter(4, [250, 2000], "bandpass", fs=SR, output="sos")
        gap = int(0.006 * SR)
        tail = signal.sosfilt(sos, h)[gap:]
        edc = np.cumsum(tail[::-1] ** 2)[::-1]  # Schroeder backward integration
        edc_db = 10 * np.log10(edc / edc[0])
        t = np.arange(tail.size) / SR
        m = (edc_db < -5) & (edc_db > -25)
        slope = np.polyfit(t[m], edc_db[m], 1)[0]  # dB/s
        assert -60.0 / slope == pytest.approx(rt60, rel=0.12)


def test_level_and_clipping_bounds():
    x = _tone()
    aug = VoiceAugment({"enabled": True}, SR)
    y = aug.apply(x, {"level": -6.0})
    assert np.sqrt(np.mean(y ** 2)) / np.sqrt(np.mean(x ** 2)) == pytest.approx(10 ** (-6 / 20), rel=1e-5)
    y = aug.apply(x, {"clip": 6.0})
    assert np.max(np.abs(y)) == pytest.approx(np.max(np.abs(x)) * 10 ** (-6 / 20), rel=1e-5)
    y = aug.apply(x, {"level": 20.0})
    assert np.max(np.abs(y)) <= 1.0  # converter full scale
    cfg = {"enabled": True, "formant_prob": 1, "pitch_prob": 1, "tempo_prob": 1, "eq_prob": 1,
           "reverb_prob": 1, "level_prob": 1, "clip_prob": 1, "level_db": [0, 6]}
    for s in range(5):
        y = VoiceAugment(cfg, SR)(x, np.random.default_rng(s))
        assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0


def test_same_seed_same_output_and_off_by_default():
    x = _tone()
    aug = VoiceAugment({"enabled": True, "reverb_prob": 1.0}, SR)
    a = aug(x, np.random.default_rng([1, 2, 3]))
    b = aug(x, np.random.default_rng([1, 2, 3]))
    c = aug(x, np.random.default_rng([1, 2, 4]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    off = VoiceAugment({}, SR)
    assert not off.enabled
    np.testing.assert_array_equal(off(x, np.random.default_rng(0)), x.astype(np.float32))


def test_config_errors_name_the_option():
    with pytest.raises(ValueError, match="pitch_prob"):
        VoiceAugmentConfig.from_dict({"pitch_prob": 2})
    with pytest.raises(ValueError, match="tempo_range"):
        VoiceAugmentConfig.from_dict({"tempo_range": [1.2, 0.9]})
    with pytest.raises(ValueError, match="valid options"):
        VoiceAugmentConfig.from_dict({"pitchh": 1})
    from learnafe.training import TrainConfig

    with pytest.raises(ValueError, match="voice_augment"):
        TrainConfig.from_dict({"voice_augment": {"eq_bands": -1}})
    assert TrainConfig().augment.voice_augment == {}


def test_training_set_augments_speech_only_and_reproducibly(tmp_path, monkeypatch):
    from learnafe.data import SILENCE_LABEL
    from learnafe.training import TrainConfig
    from learnafe.training import data as tdata
    from training_helpers import make_toy_dataset, tiny_config

    monkeypatch.setattr(tdata, "CACHE_DIR", str(tmp_path / "cache"))
    root = make_toy_dataset(tmp_path / "data")
    base = TrainConfig.from_dict(tiny_config(root, p_noise=0.0))
    on = base.replace(voice_augment={"enabled": True, "formant_prob": 1, "pitch_prob": 1,
                                     "tempo_prob": 1, "eq_prob": 1})
    plain, aug, aug2 = tdata.training_set(base), tdata.training_set(on), tdata.training_set(on)
    assert tdata.voice_augment(base) is None and plain.augment is None
    speech = [i for i in range(len(plain)) if plain.labels[i] != SILENCE_LABEL][:8]
    silence = [i for i in range(len(plain)) if plain.labels[i] == SILENCE_LABEL][:3]
    for i in speech:
        np.testing.assert_array_equal(aug.waveform(i), aug2.waveform(i))  # same seed, same clip
        assert not np.allclose(aug.waveform(i), plain.waveform(i))
        assert aug.waveform(i).shape == plain.waveform(i).shape
    for i in silence:
        np.testing.assert_array_equal(aug.waveform(i), plain.waveform(i))
    aug.set_epoch(1)
    assert not np.array_equal(aug.waveform(speech[0]), aug2.waveform(speech[0]))  # new draw per epoch
    # evaluation splits never get it
    val = tdata.open_split(root, "validation", on)
    assert val.augment is None
    assert "voice/room augmentation on" in tdata.describe_training_data(on)
