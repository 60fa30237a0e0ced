"""Synthesis of the embedded keyword data set: plan, effects, noises, engines, end to end."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
from scipy import signal

from learnafe.data import KEYWORDS, UNKNOWN_WORDS, BadDataWarning, KeywordDataset, read_wav
from learnafe.data.audio import read_wav_header
from learnafe.data.synth import (
    NOISE_TYPES,
    SIZES,
    SynthSize,
    assign_families,
    available_engines,
    effects,
    get_engine,
    make_noise,
    plan_clips,
    synthesize,
)

ENGINES = available_engines()
needs = {e: pytest.mark.skipif(e not in ENGINES, reason=f"{e} not installed") for e in
         ("espeak", "piper", "flite", "festival")}
TINY = SynthSize(per_keyword=3, per_unknown_word=1, per_extra_word=0, noise_seconds=3.0)


def _f0(x: np.ndarray, rate: int) -> float:
    """Median autocorrelation pitch (60-400 Hz) over voiced 40 ms frames (independent estimate)."""
    hop, win = int(0.02 * rate), int(0.04 * rate)
    lo, hi = int(rate / 400), int(rate / 60)
    peak = np.max(np.abs(x))
    out = []
    for s in range(0, len(x) - win, hop):
        f = x[s:s + win] - np.mean(x[s:s + win])
        if np.max(np.abs(f)) < 0.3 * peak:
            continue
        ac = np.correlate(f, f, "full")[win - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            out.append(rate / lag)
    return float(np.median(out)) if out else float("nan")


# -- plan ---------------------------------------------------------------------

def test_plan_is_deterministic_and_families_do_not_leak():
    engines = [e for e in ENGINES if e in ("espeak", "flite", "festival", "piper")]
    if not engines:
        pytest.skip("no synthesis engine")
    a, fam = plan_clips(SIZES["small"], 0, engines)
    b, _ = plan_clips(SIZES["small"], 0, engines)
    c, _ = plan_clips(SIZES["small"], 1, engines)
    assert a == b and a != c
    assert len({r["file"] for r in a}) == len(a)
    words = {r["word"] for r in a}
    assert set(KEYWORDS) <= words and set(UNKNOWN_WORDS) <= words
    assert sum(r["word"] == "yes" for r in a) == SIZES["small"].per_keyword
    split_of_family = {}
    for r in a:
        assert split_of_family.setdefault(r["voice_family"], r["split"]) == r["split"]
        assert r["split"] == fam[r["voice_family"]]
    splits = set(split_of_family.values())
    assert splits == {"train", "validation", "test"}
    # a keyword clip's parameters stay inside the documented ranges
    for r in a:
        assert 0.72 <= r["pitch"] <= 1.4 and 0.8 <= r["speed"] <= 1.3
        assert 0.86 <= r["formant_shift"] <= 1.16 and -38 <= r["level_db"] <= -14


def test_assign_families_holds_out_whole_families():
    fams = [f"espeak:v{i}" for i in range(40)] + ["voice:awb", "voice:rms", "voice:slt",
                                                  "voice:kal", "piper:joe"]
    s = assign_families(fams, seed=3)
    assert sum(v == "validation" for v in s.values()) == 4 + 1
    assert sum(v == "test" for v in s.values()) == 4 + 1
    assert s["piper:joe"] == "train"
    assert assign_families(fams, seed=3) == s and assign_families(fams, seed=4) != s


# -- effects and noises ---------------------------------------------------------

def test_formant_shift_scales_frequency_and_duration():
    rate = 16000
    t = np.arange(rate) / rate
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    y = effects.formant_shift(x, rate, 1.1)
    assert len(y) == pytest.approx(rate / 1.1, abs=2)
    spec = np.abs(np.fft.rfft(y[500:-500] * np.hanning(len(y) - 1000), 16 * rate))
    assert np.argmax(spec) * rate / (16 * rate) == pytest.approx(1100, abs=2)


def test_room_impulse_response_rt60_and_drr():
    rng = np.random.default_rng(0)
    rate = 16000
    for rt60, drr in ((0.3, 5.0), (0.6, 12.0)):
        h = effects.room_impulse_response(rng, rate, rt60, drr)
        tail = h[1:]
        assert 10 * np.log10(h[0] ** 2 / np.sum(tail ** 2)) == pytest.approx(drr, abs=0.01)
        # Schroeder backward integration: the -5..-25 dB slope extrapolated to 60 dB.
        edc = np.cumsum(tail[::-1] ** 2)[::-1]
        edc_db = 10 * np.log10(edc / edc[0])
        i5, i25 = np.argmax(edc_db < -5), np.argmax(edc_db < -25)
        t60 = 3 * (i25 - i5) / rate
        assert t60 == pytest.approx(rt60, rel=0.2)


@pytest.mark.parametrize("kind,slope", [("white_noise", 0.0), ("pink_noise", -1.0),
                                        ("brown_noise", -2.0)])
def test_coloured_noise_spectral_slope(kind, slope):
    rate = 16000
    x = make_noise(kind, np.random.default_rng(1), 8.0, rate)
    f, p = signal.welch(x, rate, nperseg=4096)
    band = (f > 100) & (f < 4000)
    fit = np.polyfit(np.log10(f[band]), np.log10(p[band]), 1)[0]
    assert fit == pytest.approx(slope, abs=0.15)
    rms = 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    assert -23 < rms < -17


def test_machine_noise_has_mains_hum_and_is_deterministic():
    rate = 16000
    a = make_noise("running_machine", np.random.default_rng(5), 4.0, rate)
    b = make_noise("running_machine", np.random.default_rng(5), 4.0, rate)
    np.testing.assert_array_equal(a, b)
    f, p = signal.welch(a, rate, nperseg=8192)
    low = (f > 30) & (f < 80)
    peak = f[low][np.argmax(p[low])]
    assert min(abs(peak - 50), abs(peak - 60)) < 3
    for kind in ("running_water", "room_tone"):
        x = make_noise(kind, np.random.default_rng(5), 2.0, rate)
        assert x.shape == (2 * rate,) and np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 0.99
    with pytest.raises(ValueError, match="babble_source"):
        make_noise("babble", np.random.default_rng(0), 1.0, rate)


# -- engines ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["espeak", "flite", "festival"])
def test_engine_pitch_and_speed_controls(name):
    if name not in ENGINES:
        pytest.skip(f"{name} not installed")
    eng = get_engine(name)
    voice = [v for v in eng.voices() if v.name in ("en-us", "awb", "kal_diphone")][0]
    lo, rate = eng.render("no", voice, pitch=0.85, speed=1.0)
    hi, _ = eng.render("no", voice, pitch=1.4, speed=1.0)
    slow, _ = eng.render("seven", voice, pitch=1.0, speed=0.8)
    fast, _ = eng.render("seven", voice, pitch=1.0, speed=1.25)
    assert _f0(hi, rate) > 1.2 * _f0(lo, rate)
    trim = lambda x: len(effects.trim_silence(x, rate))  # noqa: E731
    assert trim(slow) > 1.2 * trim(fast)


@needs["espeak"]
def test_espeak_voices_cover_accents_and_variants():
    voices = get_engine("espeak").voices()
    names = {v.name.split("+")[0] for v in voices}
    assert {"en-us", "en", "en-029", "en-gb-scotland", "en-gb-x-rp", "en-us-nyc"} <= names
    assert len({v.family for v in voices}) >= 80
    assert all(v.name.split("+")[-1] not in ("whisper", "croak") for v in voices)


@needs["piper"]
def test_piper_renders_the_word():
    eng = get_engine("piper")
    x, rate = eng.render("yes", eng.voices()[0], speed=1.0)
    y, _ = eng.render("yes", eng.voices()[0], speed=1.5)
    assert rate == 22050 and 0.2 * rate < len(x) < 1.5 * rate
    assert len(effects.trim_silence(y, rate)) < len(effects.trim_silence(x, rate))


@needs["piper"]
def test_piper_renders_the_same_audio_every_time():
    # the synthetic set is a function of its seed: the neural voice's sampler must not add
    # unseeded noise (two fresh engines, as two workers or two runs would have)
    a, _ = get_engine("piper").render("again", get_engine("piper").voices()[0], speed=1.1)
    eng = type(get_engine("piper"))()
    b, _ = eng.render("again", eng.voices()[0], speed=1.1)
    c, _ = eng.render("again", eng.voices()[0], speed=1.1)
    assert a.size > 0 and np.array_equal(a, b) and np.array_equal(b, c)


# -- end to end -----------------------------------------------------------------

def _engines_for_tiny():
    fast = [e for e in ("espeak", "flite") if e in ENGINES]
    if not fast:
        pytest.skip("needs espeak or flite")
    return fast


def test_synthesize_tiny_layout_metadata_resume(tmp_path):
    engines = _engines_for_tiny()
    out = tmp_path / "syn"
    s = synthesize(out, size=TINY, seed=2, workers=1, engines=engines, progress=False)
    assert s["failed"] == 0 and s["written"] == s["clips_planned"] + len(NOISE_TYPES)
    rows = list(csv.DictReader(open(out / "metadata.csv")))
    assert len(rows) == s["clips_planned"] == 10 * 3 + len(UNKNOWN_WORDS)
    for r in rows:
        assert read_wav_header(out / r["file"]) == (16000, 1, 16000)
        assert r["file"].startswith(r["word"] + "/")
    for kind in NOISE_TYPES:
        rate, ch, n = read_wav_header(out / "_background_noise_" / f"{kind}.wav")
        assert (rate, ch, n) == (16000, 1, 48000)
    val = set((out / "validation_list.txt").read_text().split())
    test = set((out / "testing_list.txt").read_text().split())
    assert val == {r["file"] for r in rows if r["split"] == "validation"}
    assert test == {r["file"] for r in rows if r["split"] == "test"}
    fam = {}
    for r in rows:
        assert fam.setdefault(r["voice_family"], r["split"]) == r["split"]
    # Levels follow the plan: active RMS within 1 dB (the faint noise floor adds a little).
    from learnafe.data.noise import active_mask
    for r in rows[:10]:
        x, _ = read_wav(out / r["file"])
        m = active_mask(x, 16000)
        lvl = 10 * np.log10(np.mean(x[m].astype(np.float64) ** 2))
        assert lvl == pytest.approx(float(r["level_db"]), abs=1.5) or np.max(np.abs(x)) > 0.98
    # The loader reads it.
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadDataWarning)
        n = sum(len(KeywordDataset(out, sp, unknown_fraction=None, silence_fraction=0.0))
                for sp in ("train", "validation", "test"))
    assert n == len(rows)
    # Resume: a deleted and a corrupted clip are redone, the rest kept.
    (out / rows[0]["file"]).unlink()
    raw = (out / rows[1]["file"]).read_bytes()
    (out / rows[1]["file"]).write_bytes(raw[:100])
    s2 = synthesize(out, size=TINY, seed=2, workers=1, engines=engines, progress=False)
    assert s2["written"] == 2 and s2["kept"] == len(rows) - 2 + len(NOISE_TYPES)
    with pytest.raises(ValueError, match="different settings"):
        synthesize(out, size=TINY, seed=3, workers=1, engines=engines, progress=False)
    manifest = json.loads((out / "synth.json").read_text())
    manifest["plan_sha1"] = "0" * 40
    (out / "synth.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="different clip plan"):
        synthesize(out, size=TINY, seed=2, workers=1, engines=engines, progress=False)
    summary = json.loads((out / "synth_summary.json").read_text())
    assert summary["kept"] == s2["kept"]


@needs["flite"]
def test_flite_clips_are_bit_reproducible_across_workers(tmp_path):
    a = synthesize(tmp_path / "a", size=TINY, seed=4, workers=1, engines=["flite"], progress=False)
    b = synthesize(tmp_path / "b", size=TINY, seed=4, workers=2, engines=["flite"], progress=False)
    assert a["failed"] == b["failed"] == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.wav"))
    assert len(files) == a["clips_planned"] + len(NOISE_TYPES)
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_synthesize_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="--size"):
        synthesize(tmp_path, size="huge")
    with pytest.raises(ValueError, match="--engines"):
        synthesize(tmp_path, engines=["sam"])
    with pytest.raises(ValueError, match="--workers"):
        synthesize(tmp_path, workers=0)


def test_cli_synth_and_info(tmp_path, capsys):
    from learnafe.cli import main

    engines = _engines_for_tiny()
    out = tmp_path / "cli"
    # The CLI only offers the named sizes; create the tiny set through the API, then inspect.
    synthesize(out, size=TINY, seed=0, workers=1, engines=engines, progress=False)
    assert main(["-q", "data", "info", str(out), "--json", str(tmp_path / "info.json")]) == 0
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["layout"] == "gsc" and set(info["splits"]) == {"train", "validation", "test"}
    total = sum(v["clips"] for v in info["splits"].values())
    assert total >= 30
    png = tmp_path / "overview.png"
    assert main(["-q", "data", "plot", str(out), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10000
    assert main(["-q", "data", "synth", "--out", str(tmp_path / "x"), "--engines", "nope"]) == 1
    assert "--engines" in capsys.readouterr().err


@pytest.mark.slow
def test_synthesize_small_end_to_end(tmp_path):
    """The `--size small` set as the demo makes it: all engines, 2 workers."""
    s = synthesize(tmp_path / "small", size="small", seed=0, workers=2, progress=False)
    assert s["failed"] <= 0.01 * s["clips_planned"], s["failed_items"]
    counts = {}
    for split in ("train", "validation", "test"):
        ds = KeywordDataset(tmp_path / "small", split)
        counts[split] = ds.class_counts()
    for kw in KEYWORDS:
        assert sum(c[kw] for c in counts.values()) >= 0.99 * SIZES["small"].per_keyword
        assert counts["validation"][kw] > 0 and counts["test"][kw] > 0
    assert counts["train"]["silence"] > 0 and counts["train"]["unknown"] > 0
