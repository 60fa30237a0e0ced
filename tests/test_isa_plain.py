"""The plain forward kernel on every instruction-set path, bitwise.

The AVX2 float32 path runs each block's recursion in groups of native vectors and
the AVX-512 float32 path folds the last stage of its 16 x 16 transpose into the
joins of the 8-lane halves (`cpp/biquad_plain_kernels.h`); both must give the
generic path's outputs and final states bit for bit, for every channel-block
layout (4, 8 and 16 lanes, partial last blocks), block boundary (T around the
16-sample blocks), dtype, initial state, per-example banks and thread count.
"""

from isa_helpers import assert_same_on_every_isa

CHANNELS = (1, 3, 5, 8, 12, 16, 21, 33)
SAMPLES = (1, 15, 16, 17, 130, 301)


def test_plain_forward_isa_paths_bitwise_equal(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from learnafe import _core, ops\n"
        "rng = np.random.default_rng(11)\n"
        "out = {}\n"
        f"for C in {CHANNELS}:\n"
        "    r = rng.uniform(0.3, 0.99, C); th = rng.uniform(0.1, 3.0, C)\n"
        "    b = rng.standard_normal((C, 3)); a = np.stack([-2 * r * np.cos(th), r * r], 1)\n"
        "    bpe = b[None] * (1 + 0.01 * rng.standard_normal((3, C, 3)))\n"
        "    ape = np.repeat(a[None], 3, 0)\n"
        f"    for T in {SAMPLES}:\n"
        "        for dt, sfx in ((np.float32, 'f32'), (np.float64, 'f64')):\n"
        "            fwd = getattr(_core, 'biquad_forward_' + sfx)\n"
        "            x = rng.standard_normal((3, T)).astype(dt)\n"
        "            zi = rng.standard_normal((3, C, 2)).astype(dt)\n"
        "            for nt in (1, 2):\n"
        "                y = np.empty((3, C, T), dt); zf = np.empty((3, C, 2), dt)\n"
        "                fwd(x, b, a, zi, y, zf, nt)\n"
        "                out[f'y_{sfx}_{C}_{T}_{nt}'] = y; out[f'zf_{sfx}_{C}_{T}_{nt}'] = zf\n"
        "            out[f'pe_{sfx}_{C}_{T}'] = ops.biquad_filterbank(x, bpe, ape, zi=zi)\n"
        "np.savez(sys.argv[1], **out)\n"
        "print(ops.kernel_isa())\n")
    keys = [f"{k}_{sfx}_{C}_{T}_{nt}" for k in ("y", "zf") for sfx in ("f32", "f64") for C in CHANNELS
            for T in SAMPLES for nt in (1, 2)]
    keys += [f"pe_{sfx}_{C}_{T}" for sfx in ("f32", "f64") for C in CHANNELS for T in SAMPLES]
    assert_same_on_every_isa(code, tmp_path, keys)
