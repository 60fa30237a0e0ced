"""XyloAudio 3 bank: bit-exactness and overflow against rockpool's ChipButterworth,
designer against the chip's default table and scipy, registers against
rockpool's register_config_XA3()."""

import dataclasses

import numpy as np
import pytest
import scipy.signal

from learnafe.xylo import design as D
from learnafe.xylo.bank import XyloA3FilterBank, XyloOverflowError, quantize_audio
from learnafe.xylo.registers import bank_from_registers, load_design, register_config, save_design

ref_mod = pytest.importorskip("learnafe.xylo.reference")
if not ref_mod.rockpool_available():
    pytest.skip("rockpool is not installed (pip install rockpool)", allow_module_level=True)

FULL = (1 << 13) - 1  # largest |x| the chip accepts


def _signals(rng, n, T):
    kinds = [rng.integers(-FULL, FULL + 1, size=T),                          # white, full scale
             np.round(FULL * np.sin(2 * np.pi * rng.uniform(80, 20000) * np.arange(T) /
                                    D.XYLO_SAMPLE_RATE)).astype(np.int64),   # tone
             rng.integers(-40, 41, size=T)]                                   # small: dead zone
    return [kinds[i % len(kinds)] for i in range(n)]


@pytest.fixture(scope="module")
def default_ref():
    return ref_mod.reference_filterbank()


def test_default_table_matches_rockpool():
    assert ref_mod.import_table_from_rockpool() == XyloA3FilterBank.default().channels


@pytest.mark.parametrize("prepend", [True, False])
def test_bit_exact_default_table(default_ref, prepend):
    rng = np.random.default_rng(1)
    bank = XyloA3FilterBank.default()
    sigs = _signals(rng, 3, 3000)
    y = bank.filter(np.stack(sigs), prepend_reversed=prepend)
    assert y.dtype == np.int64 and y.shape == (3, 16, 3000)
    for b, x in enumerate(sigs):
        ref = ref_mod.reference_filter(default_ref, x, prepend_reversed=prepend)
        np.testing.assert_array_equal(y[b], ref)
    # Not trivially zero: the outputs use the dynamic range.
    assert np.abs(y).max() > 1 << 20


def test_scale_out_matches_reference(default_ref):
    x = np.random.default_rng(2).integers(-FULL, FULL + 1, size=1500)
    y = XyloA3FilterBank.default().filter(x, prepend_reversed=True, scale_out=True)
    ref = ref_mod.reference_filter(default_ref, x, scale_out=True)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y[0], ref)


def test_bit_exact_designed_tables():
    rng = np.random.default_rng(3)
    for trial in range(3):
        centres = np.sort(rng.uniform(60, 20000, size=5))
        qs = rng.uniform(1.0, 8.0, size=5)
        bank = XyloA3FilterBank.design(centres, qs)
        ref = ref_mod.reference_with_table(bank.channels)
        x = _signals(rng, 3, 2000)[trial]
        y = bank.filter(x, prepend_reversed=True)
        np.testing.assert_array_equal(y[0], ref_mod.reference_filter(ref, x))


def test_int64_path_for_wide_registers_is_bit_exact():
    """Channels whose state register is wider than 37 bits use the int64 path
    (the vector path is exact only below 2^53); both agree with the reference."""
    chans = [dataclasses.replace(c, B_worst_case=16) for c in
             XyloA3FilterBank.default().channels[::5]]
    bank = XyloA3FilterBank(chans)
    assert all(c.B_w - 1 >= 37 for c in chans)
    x = np.random.default_rng(7).integers(-FULL, FULL + 1, size=2500)
    np.testing.assert_array_equal(bank.filter(x, prepend_reversed=True)[0],
                                  ref_mod.reference_filter(ref_mod.reference_with_table(chans), x))


@pytest.mark.parametrize("var, simd", [("LEARNAFE_XYLO_SIMD", "4"), ("LEARNAFE_XYLO_SIMD", "0"),
                                       ("LEARNAFE_ISA", "avx2"), ("LEARNAFE_ISA", "generic")])
def test_avx2_and_int64_paths_agree(tmp_path, var, simd):
    """The AVX2 vector path and the pure int64 path (forced with LEARNAFE_XYLO_SIMD, or
    with LEARNAFE_ISA as for every kernel) give the same outputs and overflow reports
    as the default path."""
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(8)
    x = rng.integers(-FULL, FULL + 1, size=(3, 1999))
    x[2, 5] = 1 << 13  # one input overflow signal
    np.save(tmp_path / "x.npy", x)
    code = ("import numpy as np, sys; from learnafe.xylo import XyloA3FilterBank as B; "
            "x = np.load(sys.argv[1]); y, k, w = B.default().filter(x, prepend_reversed=True, "
            "overflow='report', return_overflow=True); np.savez(sys.argv[2], y=y, k=k, w=w)")
    env = {k: v for k, v in os.environ.items() if k not in ("LEARNAFE_XYLO_SIMD", "LEARNAFE_ISA")}
    env[var] = simd
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy"), str(tmp_path / "o.npz")],
                   check=True, env=env, timeout=120)
    other = np.load(tmp_path / "o.npz")
    y, k, w = XyloA3FilterBank.default().filter(x, prepend_reversed=True, overflow="report",
                                                return_overflow=True)
    np.testing.assert_array_equal(other["y"], y)
    np.testing.assert_array_equal(other["k"], k)
    np.testing.assert_array_equal(other["w"], w)
    assert (k[2] == 1).all() and (k[:2] == 0).all()


def test_vector_path_redoes_growing_lanes_and_boundary_registers(tmp_path):
    """Unstable channels whose state grows past the vector path's exact range
    (2^36) are redone by the int64 path, a state register of exactly 37 bits
    (B_w - 1 = 36, outside the vector path's range) is computed by the int64
    path, and output overflows (found from the block's state bound) are placed
    at the same sample: outputs and overflow reports equal those of the forced
    int64 path."""
    import os
    import subprocess
    import sys

    base = XyloA3FilterBank.default().channels
    unstable = [dataclasses.replace(c, a2=-16000) for c in base[:3]] + list(base[3:])
    boundary = [dataclasses.replace(base[0], B_worst_case=15)] + list(base[1:4])
    assert XyloA3FilterBank(boundary).channels[0].B_w == 37
    quarter = [dataclasses.replace(D.design_channel(D.XYLO_SAMPLE_RATE / 4, q), B_worst_case=0)
               for q in (2.0, 3.0, 4.0)]
    rng = np.random.default_rng(11)
    x = rng.integers(-FULL, FULL + 1, size=(5, 2100))
    ramp = np.linspace(0, FULL, 2100).astype(np.int64)  # overflows part-way through
    x[3:] = np.tile([1, 0, -1, 0], 525)[None] * np.stack([ramp, ramp[::-1]])
    np.save(tmp_path / "x.npy", x)
    banks = (("unstable", unstable), ("boundary", boundary), ("quarter", quarter))
    for name, chans in banks:
        XyloA3FilterBank(chans).save(tmp_path / f"{name}.json")
    code = ("import numpy as np, sys; from learnafe.xylo import XyloA3FilterBank as B; "
            "x = np.load(sys.argv[1]); out = {}\n"
            "for name in ('unstable', 'boundary', 'quarter'):\n"
            "    for rev in (False, True):\n"
            "        y, k, w = B.load(sys.argv[2] + '/' + name + '.json').filter(x, "
            "prepend_reversed=rev, overflow='report', return_overflow=True)\n"
            "        out.update({f'{name}{rev}y': y, f'{name}{rev}k': k, f'{name}{rev}w': w})\n"
            "np.savez(sys.argv[3], **out)")
    env = dict(os.environ, LEARNAFE_XYLO_SIMD="0")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy"), str(tmp_path),
                    str(tmp_path / "o.npz")], check=True, env=env, timeout=120)
    other = np.load(tmp_path / "o.npz")
    for name, chans in banks:
        for rev in (False, True):
            y, k, w = XyloA3FilterBank(chans).filter(x, prepend_reversed=rev, overflow="report",
                                                    return_overflow=True)
            np.testing.assert_array_equal(other[f"{name}{rev}y"], y)
            np.testing.assert_array_equal(other[f"{name}{rev}k"], k)
            np.testing.assert_array_equal(other[f"{name}{rev}w"], w)
    y, k, _ = XyloA3FilterBank(unstable).filter(x, overflow="report", return_overflow=True)
    assert (k[:, :3] == 2).all() and np.abs(y[:, :3]).max() >= 1 << 36
    _, k, _ = XyloA3FilterBank(quarter).filter(x, overflow="report", return_overflow=True)
    assert (k == 3).any()


def test_batch_rows_independent_and_threads_agree():
    rng = np.random.default_rng(4)
    x = rng.integers(-FULL, FULL + 1, size=(5, 777))
    bank = XyloA3FilterBank.default()
    y1 = bank.filter(x, num_threads=1)
    y2 = bank.filter(x, num_threads=2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(y1[3], bank.filter(x[3])[0])
    # int16 / int32 inputs give the same result as int64.
    np.testing.assert_array_equal(bank.filter(x.astype(np.int16)), y1)


def test_float_model_matches_integer_bank():
    """The integer bank realises the float model up to truncation noise."""
    bank = XyloA3FilterBank.default()
    rng = np.random.default_rng(5)
    x = rng.integers(-FULL, FULL + 1, size=20000)
    y = bank.filter(x).astype(float)[0]
    b, a = bank.float_coefficients()
    for c in range(16):
        yf = scipy.signal.lfilter(b[c], np.r_[1.0, a[c]], x.astype(float))
        yf = np.r_[0.0, yf[:-1]]  # the one-sample latch of the AR stage
        err = np.abs(y[c] - yf).max()
        # Truncation error is bounded by the AR noise gain (a few LSB per step).
        assert err < 1e-3 * np.abs(yf).max() + 4 * 2 ** (bank.channels[c].B_worst_case + 2)


def _ref_kind(exc):
    msg = str(exc)
    if "input signal values" in msg:
        return 1
    if "AR branch" in msg:
        return 2
    if "computed filter output" in msg:
        return 3
    raise AssertionError(f"unexpected reference message {msg}")


def _check_overflow_like_reference(ch, x):
    """Overflow kind of the reference (0 if it returns) equals ours; ours raises too."""
    Overflow = ref_mod.reference_overflow_error()
    bank = XyloA3FilterBank([ch])
    try:
        ref_mod.reference_filter(ref_mod.reference_with_table([ch]), x)
        expected = 0
    except Overflow as exc:
        expected = _ref_kind(exc)
    _, kind, _ = bank.filter(x, prepend_reversed=True, overflow="report", return_overflow=True)
    assert int(kind[0, 0]) == expected, (ch, expected, kind)
    if expected:
        with pytest.raises(XyloOverflowError, match="overflow in signal 0, channel 0"):
            bank.filter(x, prepend_reversed=True)
    return expected


def test_overflow_where_reference_raises():
    rng = np.random.default_rng(6)
    base = XyloA3FilterBank.default().channels[0]
    tone = np.round(FULL * np.sin(2 * np.pi * 105.27 * np.arange(6000) / D.XYLO_SAMPLE_RATE)
                    ).astype(np.int64)
    seen = set()
    for wc in range(0, 9):
        ch = dataclasses.replace(base, B_worst_case=wc)
        for x in (tone, rng.integers(-FULL, FULL + 1, size=3000)):
            seen.add(_check_overflow_like_reference(ch, x))
    # Output overflow without state overflow: a quarter-rate tone through a
    # channel centred there makes y = v[n] - v[n-2] = 2 v[n].
    ch = dataclasses.replace(D.design_channel(D.XYLO_SAMPLE_RATE / 4, 3.0), B_worst_case=0)
    quarter = np.tile([1, 0, -1, 0], 500)
    for amp in np.unique(np.geomspace(200, FULL, 25).astype(int)):
        seen.add(_check_overflow_like_reference(ch, amp * quarter))
    assert {0, 2, 3} <= seen  # the sweeps exercised state and output overflow


def test_overflow_sample_index_and_input_range():
    bank = XyloA3FilterBank.default()
    x = np.zeros((2, 100), dtype=np.int64)
    x[1, 37] = 1 << 13  # one past the 14-bit range
    y, kind, where = bank.filter(x, overflow="report", return_overflow=True)
    assert (kind[0] == 0).all() and (kind[1] == 1).all() and (where[1] == 37).all()
    _, kind, where = bank.filter(x, prepend_reversed=True, overflow="report",
                                 return_overflow=True)
    assert (where[1] == 100 - 1 - 37 - 100).all()  # inside the reversed prefix
    with pytest.raises(XyloOverflowError, match="input overflow in signal 1"):
        bank.filter(x)
    Overflow = ref_mod.reference_overflow_error()
    with pytest.raises(Overflow):
        ref_mod.reference_filter(ref_mod.reference_filterbank((0,)), x[1])


@pytest.mark.parametrize("bad, match", [
    (np.zeros(10), "integer array"),
    (np.zeros((2, 2, 2), dtype=int), r"shape \[T\] or \[B, T\]"),
    (np.zeros(0, dtype=int), "empty"),
])
def test_bad_input_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        XyloA3FilterBank.default().filter(bad)


def test_quantize_audio_range():
    q = quantize_audio(np.array([-2.0, -1.0, 0.0, 0.5, 1.0]))
    np.testing.assert_array_equal(q, [-FULL, -FULL, 0, 4096, FULL])
    with pytest.raises(ValueError, match="NaN"):
        quantize_audio(np.array([np.nan]))


# -- designer ------------------------------------------------------------------

def test_float_design_is_iirpeak():
    for f, q in [(100.0, 3.0), (1500.0, 2.5), (16000.0, 3.0), (7.0, 0.9)]:
        b0, a1, a2 = D.float_design(f, q)
        b, a = scipy.signal.iirpeak(f, q, fs=D.XYLO_SAMPLE_RATE)
        np.testing.assert_allclose([b0, 0.0, -b0], b, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose([1.0, a1, a2], a, rtol=1e-12, atol=1e-15)


def test_designer_reproduces_default_table():
    designed = D.design_bank(D.DEFAULT_CENTRES_HZ, D.DEFAULT_Q)
    assert designed == XyloA3FilterBank.default().channels
    # and the read-off is the inverse of the designer, table row by row
    for ch in XyloA3FilterBank.default().channels:
        assert D.design_channel(*D.read_off(ch)) == ch


def test_realised_centres_and_q_of_default_table():
    """DESIGN.md facts: peaks 105 ... 16567 Hz, -3 dB Q about 3 (not 6)."""
    centres, qs = XyloA3FilterBank.default().centres_and_q()
    np.testing.assert_array_equal(np.round(centres), [105, 136, 202, 279, 390, 543, 762, 1072,
                                                      1503, 2108, 2958, 4152, 5832, 8204,
                                                      11585, 16567])
    assert np.all(np.abs(qs - 3) < 0.2)
    # independent check of the realised peak: dense frequency response
    bank = XyloA3FilterBank.default()
    f = np.linspace(50, 24000, 400001)
    H = np.abs(bank.frequency_response(f))
    peaks = f[np.argmax(H, axis=1)]
    np.testing.assert_allclose(peaks, centres, atol=0.2)
    # unit peak gain with scale_out (peak_gain * 2^-B_b * scale_out = 1)
    np.testing.assert_allclose(H.max(axis=1), 1.0, atol=6e-3)


def test_worst_case_bits_are_sufficient():
    """No 14-bit input overflows a designed channel (the worst case of an LTI
    filter is the sign pattern of its impulse response)."""
    for ch in D.design_bank([80, 700, 9000, 20000], [2.0, 4.0, 6.0, 1.0]):
        a1, a2 = ch.taps()
        h = scipy.signal.lfilter([1.0], [1.0, a1, a2], np.r_[1.0, np.zeros(60000)])
        x = (FULL * np.sign(h[::-1])).astype(np.int64)
        XyloA3FilterBank([ch]).filter(x)  # must not raise


@pytest.mark.parametrize("centre, q, match", [
    (30000.0, 3.0, "Nyquist"), (-5.0, 3.0, "centre frequency"), (1000.0, 0.0, "Q must"),
    (2.0, 50.0, "shift registers"),
])
def test_designer_errors(centre, q, match):
    with pytest.raises(ValueError, match=match):
        D.design_channel(centre, q)


# -- registers -------------------------------------------------------------------

def test_registers_identical_to_rockpool(default_ref):
    ours = register_config(XyloA3FilterBank.default())
    theirs = default_ref.register_config_XA3()
    assert set(ours) == set(theirs)
    assert all(ours[k] == int(theirs[k]) for k in ours)


def test_registers_of_designed_subset_identical_to_rockpool():
    bank = XyloA3FilterBank.design([300, 900, 2700, 8100, 15000], 4.0)
    ref = ref_mod.reference_with_table(bank.channels)
    theirs = ref.register_config_XA3()
    ours = register_config(bank)
    assert set(ours) == set(theirs) and all(ours[k] == int(theirs[k]) for k in ours)


def test_registers_round_trip_and_files(tmp_path):
    bank = XyloA3FilterBank.default()
    regs = register_config(bank)
    again = bank_from_registers(regs, B_worst_case=list(bank.field("B_worst_case")),
                                scale_out=list(bank.scale_out))
    assert again == bank
    for suffix in (".json", ".toml"):
        path = save_design(bank, tmp_path / f"bank{suffix}")
        assert load_design(path) == bank
    bad = (tmp_path / "bank.json").read_text().replace('"a1": -32694', '"a1": -32000')
    (tmp_path / "edited.json").write_text(bad)
    with pytest.raises(ValueError, match="registers disagree"):
        load_design(tmp_path / "edited.json")


def test_filter_outputs_from_the_shared_cache_are_never_overwritten_while_referenced():
    """Outputs come from the output cache shared with learnafe.ops: a result
    that is still referenced keeps its values when the same shape is filtered
    again, a dropped one is reused, and results equal an uncached filter."""
    from learnafe import ops

    bank = XyloA3FilterBank.default()
    rng = np.random.default_rng(11)
    x1 = rng.integers(-(2**13 - 1), 2**13, size=(2, 20000))
    x2 = rng.integers(-(2**13 - 1), 2**13, size=(2, 20000))
    prev = ops.set_output_cache_limit(1 << 30)
    ops.empty_output_cache()
    try:
        y1 = bank.filter(x1)
        assert y1.nbytes >= 1 << 20 and y1.base is not None   # large: cached
        keep = y1.copy()
        y2 = bank.filter(x2)                                   # y1 alive: new buffer
        assert not np.shares_memory(y1, y2)
        np.testing.assert_array_equal(y1, keep)
        view = y2[:, 3]
        ptr = y2.__array_interface__["data"][0]
        del y2
        y3 = bank.filter(x1)                                   # y2's buffer held by the view
        ptr3 = y3.__array_interface__["data"][0]
        assert ptr3 != ptr
        np.testing.assert_array_equal(y3, keep)
        del view, y3
        y4 = bank.filter(x2)                                   # now a dropped buffer is reused
        assert y4.__array_interface__["data"][0] in (ptr, ptr3)
        assert not np.shares_memory(y4, y1)
        np.testing.assert_array_equal(y1, keep)
        ops.set_output_cache_limit(0)
        np.testing.assert_array_equal(y4, bank.filter(x2))     # uncached result is identical
    finally:
        ops.set_output_cache_limit(prev)
        ops.empty_output_cache()


def _peak_and_q_scipy(a1, a2, fs):
    """Peak and -3 dB Q of (1 - z^-2) / (1 + a1 z^-1 + a2 z^-2) from a dense scipy response."""
    f = np.linspace(1.0, fs / 2 - 1, 2_000_001)
    _, h = scipy.signal.freqz([1.0, 0.0, -1.0], [1.0, a1, a2], worN=f, fs=fs)
    m = np.abs(h)
    k = int(np.argmax(m))
    above = np.nonzero(m >= m[k] / np.sqrt(2))[0]
    return f[k], f[k] / (f[above[-1]] - f[above[0]])


@pytest.mark.parametrize("centre, q, within", [(100.0, 3.41, False), (156.8, 2.90, False),
                                               (172.4, 3.10, True), (1000.0, 3.41, True)])
def test_grid_limit_finds_the_closest_chip_taps(centre, q, within):
    g = D.grid_limit(centre, q)
    assert g["within"] is within
    # the reported errors are those of the reported taps (scipy, dense grid)
    _, _, frac = D.round_taps(*D.float_design(centre, q)[1:])
    f, qq = _peak_and_q_scipy(g["a1"] / 2 ** frac, g["a2"] / 2 ** frac, D.XYLO_SAMPLE_RATE)
    assert 100 * (f / centre - 1) == pytest.approx(g["f0_error_pct"], abs=0.01)
    assert 100 * (qq / q - 1) == pytest.approx(g["q_error_pct"], abs=0.05)
    assert (abs(g["f0_error_pct"]) <= 2 and abs(g["q_error_pct"]) <= 5) is within
    # no pair in the searched window does better: the "best" design is never inside the limits when this says no
    ch = D.design_channel(centre, q, quantization="best")
    rf, rq = D.peak_and_q(ch)
    if not within:
        assert abs(rf / centre - 1) > 0.02 or abs(rq / q - 1) > 0.05
