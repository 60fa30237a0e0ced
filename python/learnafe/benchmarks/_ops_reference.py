"""The baselines and inputs of the ``ops`` bench section: the conventional bank, the plain
PyTorch recursion, torchlpc's all-pole filter, the envelope composed from the op (unfused),
and one envelope forward + backward step."""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["SAMPLE_RATE", "TAU_S", "bank", "torch_loop", "torchlpc_allpole", "torchlpc_available",
           "unfused_envelope", "bench_tensors", "envelope_step"]

SAMPLE_RATE = 20000.0
TAU_S = 0.01


def bank(channels: int, sample_rate: float = SAMPLE_RATE, q: float = 3.0,
         f_lo: float = 100.0, f_hi: float = 8000.0) -> tuple[np.ndarray, np.ndarray]:
    """Conventional constant-Q DSSF band-pass bank (log-spaced centres, unit peak gain),
    mapped to z by the bilinear transform pre-warped at each centre: (b [C, 3], a [C, 2])."""
    from learnafe.circuits.discretize import discretize
    from learnafe.circuits.dssf import s_coefficients_from_w0_q

    w0 = 2 * np.pi * np.geomspace(f_lo, f_hi, channels)
    return discretize(*s_coefficients_from_w0_q(w0, q, 1.0), sample_rate)


def torch_loop(x, b, a):
    """Plain PyTorch reference: direct form II, Python loop over time, [B, C] per step."""
    import torch

    B, T = x.shape
    v1 = x.new_zeros(B, b.shape[0])
    v2 = x.new_zeros(B, b.shape[0])
    b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
    a1, a2 = a[:, 0], a[:, 1]
    out = []
    for t in range(T):
        v = x[:, t:t + 1] - a1 * v1 - a2 * v2
        out.append(b0 * v + b1 * v1 + b2 * v2)
        v1, v2 = v, v1
    return torch.stack(out, dim=-1)


def torchlpc_allpole(x, a):
    """The all-pole part ``v = x / A(z)`` of every channel with torchlpc: x ``[B, T]``,
    a ``[C, 2]`` -> ``[B, C, T]`` (``torchlpc.sample_wise_lpc`` on the ``[B * C, T]``
    rows, time-invariant coefficients expanded to ``[B * C, T, 2]``)."""
    import torchlpc

    B, T = x.shape
    C = a.shape[0]
    rows = x.unsqueeze(1).expand(B, C, T).reshape(B * C, T)
    coef = a.to(x.dtype).unsqueeze(0).unsqueeze(2).expand(B, C, T, 2).reshape(B * C, T, 2)
    return torchlpc.sample_wise_lpc(rows, coef).reshape(B, C, T)


def torchlpc_available() -> tuple[bool, str]:
    """``(True, "")`` when torchlpc imports, else ``(False, why)``."""
    try:
        import torchlpc  # noqa: F401
    except ImportError as exc:
        return False, f"torchlpc not installed ({exc}; pip install torchlpc to measure it)"
    return True, ""


def unfused_envelope(x, b, a, *, hop: int, tau: float, sample_rate: float, rectify: str = "abs"):
    """The fused op's features composed from :func:`biquad_filterbank` and torch ops
    (stores the [B, C, T] signals; the baseline the fused op is measured against)."""
    import torch

    from learnafe import ops

    B, T = x.shape
    C = b.shape[0]
    y = ops.biquad_filterbank(x, b, a)
    r = y.abs() if rectify == "abs" else y.square()
    alpha = ops.envelope_alpha(tau, sample_rate)
    lp_b = torch.tensor([[alpha, 0.0, 0.0]], dtype=b.dtype)
    lp_a = torch.tensor([[-(1.0 - alpha), 0.0]], dtype=a.dtype)
    e = ops.biquad_filterbank(r.reshape(B * C, T), lp_b, lp_a).reshape(B, C, T)
    return e[..., hop - 1:(T // hop) * hop:hop]


def bench_tensors(cfg: dict, seed: int, requires_grad: bool):
    """The section's signal ``x [B, T]`` (float32) and bank ``b``, ``a`` (float64), as NumPy arrays
    and as torch tensors (``requires_grad`` on the tensors)."""
    import torch

    rng = np.random.default_rng(seed)
    b, a = bank(cfg["channels"])
    x = rng.standard_normal((cfg["batch"], cfg["samples"])).astype(np.float32)
    xt = torch.tensor(x, requires_grad=requires_grad)
    bt = torch.tensor(b, requires_grad=requires_grad)
    at = torch.tensor(a, requires_grad=requires_grad)
    return x, b, a, xt, bt, at


def envelope_step(path: str, cfg: dict, seed: int) -> Callable[[], None]:
    """One forward + backward of the ``"fused"`` (the op) or ``"unfused"`` envelope on the
    section's inputs, with a fixed random output gradient."""
    import torch

    from learnafe import ops

    _, _, _, xt, bt, at = bench_tensors(cfg, seed, True)
    frames = cfg["samples"] // cfg["hop"]
    g = torch.tensor(np.random.default_rng(seed + 1).standard_normal(
        (cfg["batch"], cfg["channels"], frames)), dtype=torch.float32)
    fn = ops.filterbank_envelope if path == "fused" else unfused_envelope

    def step():
        xt.grad = bt.grad = at.grad = None
        out = fn(xt, bt, at, hop=cfg["hop"], tau=TAU_S, sample_rate=SAMPLE_RATE)
        out.backward(g)

    return step
