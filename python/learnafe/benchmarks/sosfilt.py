"""``learnafe bench`` section ``sosfilt``: :func:`learnafe.sosfilt` against scipy and a plain torch loop.

A bank of ``C`` cascades (``sos [C, S, 6]``, Butterworth band-passes of order
``S``, i.e. ``S`` sections each) filters a float32 ``[B, T]`` batch
(float64 coefficients), for ``S = 1, 2, 4``.  All paths are timed in one run,
in interleaved rounds (one warm-up round, then ``repeats`` rounds, each timing
every path once); each path's time is its best round, so load from other
processes affects all paths alike.

Paths:

* ``sosfilt forward``: :func:`learnafe.sosfilt` on torch tensors without autograd;
* ``sosfilt forward+backward``: the same with ``requires_grad`` on ``x`` and
  ``sos`` and ``y.backward(g)`` with a fixed random ``g``;
* ``scipy sosfilt``: ``scipy.signal.sosfilt`` over the time axis of the
  ``[B, T]`` batch, one call per channel (scipy has no gradients);
* ``torch loop``: the cascade as a Python loop over time on ``[B, C]``
  tensors (direct form II transposed, autograd through it for
  forward+backward), measured on the first ``torch_loop_samples`` samples and
  scaled to ``T`` (its cost per sample does not depend on ``T``);
* ``torchlpc``: each section as a ``conv1d`` numerator and
  ``torchlpc.sample_wise_lpc`` denominator on the ``[B * C, T]`` signals, where
  the ``torchlpc`` package is installed (it needs ``numba`` and builds a C++
  extension against torch, so it is optional); otherwise the row says
  "skipped" and why.

Ratios (per row, and in the result's ``ratios`` dict as ``S<S>.<name>``,
the numbers ``learnafe bench --isa`` compares across kernel paths):
``forward_vs_scipy`` (scipy time / sosfilt forward time),
``forward_backward_vs_scipy_forward`` (scipy forward time / sosfilt
forward+backward time), ``forward_vs_torch_loop``,
``forward_backward_vs_torch_loop`` and, with torchlpc,
``forward_vs_torchlpc`` and ``forward_backward_vs_torchlpc``.
"""

from __future__ import annotations

import logging
import time

import numpy as np

TITLE = "sosfilt: cascaded sections against scipy.signal.sosfilt, a torch loop and torchlpc"

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000.0
FULL = {"batch": 32, "channels": 16, "samples": 20000, "sections": (1, 2, 4), "repeats": 3,
        "torch_loop_samples": 500}
QUICK = {"batch": 4, "channels": 8, "samples": 4000, "sections": (1, 2, 4), "repeats": 2,
         "torch_loop_samples": 200}


def bank(channels: int, sections: int, sample_rate: float = SAMPLE_RATE) -> np.ndarray:
    """``[C, S, 6]``: Butterworth band-passes of order ``S`` (``S`` sections), centres 150 Hz .. 0.4 fs."""
    import scipy.signal as ss

    centres = np.geomspace(150.0, 0.4 * sample_rate / 1.25, channels)
    return np.stack([ss.butter(sections, [f / 1.15, f * 1.15], btype="bandpass", fs=sample_rate, output="sos")
                     for f in centres])


def torch_loop(sos, x):
    """Plain PyTorch reference: direct form II transposed per section, Python loop over time on ``[B, C]``."""
    import torch

    sos = sos / sos[..., 3:4]
    C, S = sos.shape[:2]
    w = x[:, None, :].expand(x.shape[0], C, x.shape[1])
    for s in range(S):
        b0, b1, b2, _, a1, a2 = (sos[:, s, k] for k in range(6))
        z1 = x.new_zeros(x.shape[0], C)
        z2 = x.new_zeros(x.shape[0], C)
        out = []
        for t in range(x.shape[1]):
            u = w[:, :, t]
            y = b0 * u + z1
            z1 = b1 * u - a1 * y + z2
            z2 = b2 * u - a2 * y
            out.append(y)
        w = torch.stack(out, -1)
    return w


def torchlpc_skip_reason() -> str | None:
    """Why the torchlpc path cannot run here, or None when it can."""
    try:
        import torchlpc  # noqa: F401
    except Exception as e:  # an ImportError, or numba failing at import
        return f"skipped: torchlpc is not importable ({type(e).__name__}: {e}); it needs numba and a C++ build"
    return None


def torchlpc_cascade(sos, x):
    """The cascade ``sos [C, S, 6]`` on ``x [B, T]`` with torchlpc: per section the numerator as a causal
    ``conv1d`` (one group per channel) and the denominator ``1 / (1 + a1 z^-1 + a2 z^-2)`` as
    ``torchlpc.sample_wise_lpc`` with the coefficients repeated over time; ``[B, C, T]``."""
    import torch
    from torchlpc import sample_wise_lpc

    sos = (sos / sos[..., 3:4]).to(x.dtype)
    C, S = sos.shape[:2]
    B, T = x.shape
    w = x[:, None, :].expand(B, C, T)
    for s in range(S):
        num = sos[:, s, 2::-1].unsqueeze(1)  # [C, 1, 3]: b2, b1, b0 (conv1d correlates)
        v = torch.nn.functional.conv1d(torch.nn.functional.pad(w, (2, 0)), num, groups=C)
        den = sos[:, s, 4:6]  # a1, a2
        coef = den[None, :, None, :].expand(B, C, T, 2).reshape(B * C, T, 2)
        w = sample_wise_lpc(v.reshape(B * C, T), coef).reshape(B, C, T)
    return w


def _best(paths: dict, repeats: int) -> dict:
    times = {name: [] for name in paths}
    for r in range(repeats + 1):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            fn()
            if r:
                times[name].append(time.perf_counter() - t0)
    return {name: min(t) for name, t in times.items()}


def _check_paths(st, xt, x, sos, TL: int, S: int, lpc_skip) -> None:
    """Every path's result against scipy first (a broken op cannot produce a timing)."""
    import scipy.signal as ss
    import torch

    from learnafe import ops

    C = sos.shape[0]
    ref = np.stack([ss.sosfilt(sos[c], x.astype(np.float64)) for c in range(C)], -2)
    with torch.no_grad():
        got = ops.sosfilt(st, xt).numpy()
        loop = torch_loop(st, xt[:, :TL].double()).numpy()
    scale = float(np.max(np.abs(ref)))
    if np.max(np.abs(got - ref)) > 1e-4 * scale or np.max(np.abs(loop - ref[..., :TL])) > 1e-9 * scale:
        raise RuntimeError(f"sosfilt benchmark: a path disagrees with scipy at S={S}")
    if lpc_skip is None:
        with torch.no_grad():
            lpc = torchlpc_cascade(st, xt.double()).numpy()
        if np.max(np.abs(lpc - ref)) > 1e-9 * scale:
            raise RuntimeError(f"sosfilt benchmark: the torchlpc path disagrees with scipy at S={S}")


def _paths(st, xt, x, sos, g, TL: int, lpc_skip) -> dict:
    """The timed callables of one section count: the op, scipy, the torch loop, torchlpc."""
    import scipy.signal as ss
    import torch

    from learnafe import ops

    C = sos.shape[0]
    xg, sg = xt.clone().requires_grad_(True), st.clone().requires_grad_(True)
    xl, sl = xt[:, :TL].clone().requires_grad_(True), st.float().clone().requires_grad_(True)

    def fwd():
        with torch.no_grad():
            ops.sosfilt(st, xt)

    def fwd_bwd():
        xg.grad = sg.grad = None
        ops.sosfilt(sg, xg).backward(g)

    def scipy_fwd():
        for c in range(C):
            ss.sosfilt(sos[c], x)

    def loop_fwd():
        with torch.no_grad():
            torch_loop(sl.detach(), xl.detach())

    def loop_fwd_bwd():
        xl.grad = sl.grad = None
        torch_loop(sl, xl).backward(g[..., :TL])

    paths = {"sosfilt forward": fwd, "sosfilt forward+backward": fwd_bwd, "scipy sosfilt": scipy_fwd,
             "torch loop forward": loop_fwd, "torch loop forward+backward": loop_fwd_bwd}
    if lpc_skip is None:
        xp, sp = xt.clone().requires_grad_(True), st.float().clone().requires_grad_(True)

        def lpc_fwd():
            with torch.no_grad():
                torchlpc_cascade(sp.detach(), xt)

        def lpc_fwd_bwd():
            xp.grad = sp.grad = None
            torchlpc_cascade(sp, xp).backward(g)

        paths.update({"torchlpc forward": lpc_fwd, "torchlpc forward+backward": lpc_fwd_bwd})
    return paths


def _row(S: int, t: dict, lpc_skip) -> dict:
    """The ratios of one section count from its best times."""
    row = {"sections": S, "seconds": t,
           "forward_vs_scipy": t["scipy sosfilt"] / t["sosfilt forward"],
           "forward_backward_vs_scipy_forward": t["scipy sosfilt"] / t["sosfilt forward+backward"],
           "forward_vs_torch_loop": t["torch loop forward"] / t["sosfilt forward"],
           "forward_backward_vs_torch_loop": t["torch loop forward+backward"] / t["sosfilt forward+backward"]}
    if lpc_skip is None:
        row["forward_vs_torchlpc"] = t["torchlpc forward"] / t["sosfilt forward"]
        row["forward_backward_vs_torchlpc"] = t["torchlpc forward+backward"] / t["sosfilt forward+backward"]
    return row


def run(args) -> dict:
    """Measure every path for every section count; returns a JSON-serialisable dict."""
    import torch

    from learnafe.benchmarks._environment import run_environment, section_settings

    cfg, seed, threads = section_settings(args, QUICK, FULL)
    B, C, T, reps, TL = cfg["batch"], cfg["channels"], cfg["samples"], cfg["repeats"], cfg["torch_loop_samples"]
    TL = min(TL, T)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T)).astype(np.float32)
    xt = torch.from_numpy(x)
    g = torch.from_numpy(rng.standard_normal((B, C, T)).astype(np.float32))
    rows = []
    lpc_skip = torchlpc_skip_reason()
    for S in cfg["sections"]:
        sos = bank(C, S)
        st = torch.from_numpy(sos)
        _check_paths(st, xt, x, sos, TL, S, lpc_skip)
        t = _best(_paths(st, xt, x, sos, g, TL, lpc_skip), reps)
        for k in ("torch loop forward", "torch loop forward+backward"):
            t[k] *= T / TL
        row = _row(S, t, lpc_skip)
        log.info("sosfilt S=%d: forward %.1fx scipy, forward+backward %.2fx scipy's forward", S,
                 row["forward_vs_scipy"], row["forward_backward_vs_scipy_forward"])
        rows.append(row)
    ratios = {f"S{r['sections']}.{k}": v for r in rows for k, v in r.items() if k.startswith("forward")}
    return {"config": {**cfg, "sections": list(cfg["sections"]), "threads": threads},
            "environment": run_environment(threads), "rows": rows, "ratios": ratios, "torchlpc": lpc_skip or "ran",
            "targets": {"forward_vs_scipy": 20.0, "forward_backward_vs_scipy_forward": 5.0, "at_sections": 4}}


def format(result: dict) -> str:  # noqa: A001 - the section interface
    cfg = result["config"]
    lines = [f"sosfilt, bank [C, S, 6]: B={cfg['batch']} C={cfg['channels']} T={cfg['samples']}, "
             f"{cfg['threads']} thread(s), float32 signal, float64 sos, best of {cfg['repeats']} "
             f"(torch loop on {cfg['torch_loop_samples']} samples, scaled)",
             f"{'S':>2} {'fwd ms':>9} {'fwd+bwd ms':>11} {'scipy ms':>9} {'loop fwd ms':>12} {'loop f+b ms':>12} "
             f"{'lpc fwd ms':>11} {'lpc f+b ms':>11} "
             f"{'fwd/scipy':>10} {'fwd+bwd/scipy fwd':>18} {'fwd/loop':>9} {'f+b/loop':>9}"]

    def ms(t, key, width):
        return f"{1e3 * t[key]:>{width}.1f}" if key in t else f"{'-':>{width}}"

    for r in result["rows"]:
        t = r["seconds"]
        lines.append(f"{r['sections']:>2} {ms(t, 'sosfilt forward', 9)} {ms(t, 'sosfilt forward+backward', 11)} "
                     f"{ms(t, 'scipy sosfilt', 9)} {ms(t, 'torch loop forward', 12)} "
                     f"{ms(t, 'torch loop forward+backward', 12)} {ms(t, 'torchlpc forward', 11)} "
                     f"{ms(t, 'torchlpc forward+backward', 11)} "
                     f"{r['forward_vs_scipy']:>9.2f}x {r['forward_backward_vs_scipy_forward']:>17.2f}x "
                     f"{r['forward_vs_torch_loop']:>8.1f}x {r['forward_backward_vs_torch_loop']:>8.1f}x")
    if result.get("torchlpc", "ran") != "ran":
        lines.append(f"torchlpc: {result['torchlpc']}")
    tg = result["targets"]
    lines.append(f"targets at S={tg['at_sections']}: forward >= {tg['forward_vs_scipy']:g}x scipy, "
                 f"forward+backward >= {tg['forward_backward_vs_scipy_forward']:g}x scipy's forward")
    return "\n".join(lines)
