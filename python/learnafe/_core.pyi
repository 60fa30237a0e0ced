"""Type stub of ``learnafe._core``, the compiled kernels (cpp/bindings.cpp).

Raw buffers in, raw buffers out: every array argument is C-contiguous with the dtype
the function's suffix names (``_f32``: float32 signals, ``_f64``: float64 signals;
coefficients and their gradients are always float64), outputs are written into the
arrays passed in. ``learnafe.ops`` validates and allocates; call that instead.
tests/test_core_stub.py checks that this stub and the module list the same functions
with the same parameters.
"""

import numpy as np
from numpy.typing import ArrayLike, NDArray

def build_info() -> dict[str, str]:
    """Compiler id, version and banner, build type, kernel flags, OpenMP version."""

def omp_default_threads() -> int:
    """Threads an OpenMP region uses by default in this process."""

def biquad_isa() -> str:
    """Instruction set the biquad kernels use: "avx512", "avx2" or "generic"."""

def biquad_checkpoint_size(B: int, T: int, C: int) -> int:
    """float64 values of the checkpoint buffer the forward pass can fill for the backward."""

def biquad_forward_f32(x: NDArray[np.float32], b: NDArray[np.float64], a: NDArray[np.float64],
                       zi: NDArray[np.float32] | None, y: NDArray[np.float32],
                       zf: NDArray[np.float32] | None, num_threads: int,
                       checkpoints: NDArray[np.float64] | None = None) -> None:
    """x [B, T], b [C, 3], a [C, 2] (or per example [B, C, 3], [B, C, 2]), zi/zf [B, C, 2] -> y [B, C, T]."""

def biquad_forward_f64(x: NDArray[np.float64], b: NDArray[np.float64], a: NDArray[np.float64],
                       zi: NDArray[np.float64] | None, y: NDArray[np.float64],
                       zf: NDArray[np.float64] | None, num_threads: int,
                       checkpoints: NDArray[np.float64] | None = None) -> None:
    """x [B, T], b [C, 3], a [C, 2] (or per example [B, C, 3], [B, C, 2]), zi/zf [B, C, 2] -> y [B, C, T]."""

def biquad_backward_f32(x: NDArray[np.float32], b: NDArray[np.float64], a: NDArray[np.float64],
                        zi: NDArray[np.float32] | None, gy: NDArray[np.float32],
                        gzf: NDArray[np.float32] | None, gx: NDArray[np.float32],
                        gb: NDArray[np.float64], ga: NDArray[np.float64],
                        gzi: NDArray[np.float32] | None, num_threads: int,
                        checkpoints: NDArray[np.float64] | None = None) -> None:
    """Adjoint of biquad_forward_f32: gy [B, C, T] -> gx [B, T], gb, ga (the shape of b, a), gzi."""

def biquad_backward_f64(x: NDArray[np.float64], b: NDArray[np.float64], a: NDArray[np.float64],
                        zi: NDArray[np.float64] | None, gy: NDArray[np.float64],
                        gzf: NDArray[np.float64] | None, gx: NDArray[np.float64],
                        gb: NDArray[np.float64], ga: NDArray[np.float64],
                        gzi: NDArray[np.float64] | None, num_threads: int,
                        checkpoints: NDArray[np.float64] | None = None) -> None:
    """Adjoint of biquad_forward_f64: gy [B, C, T] -> gx [B, T], gb, ga (the shape of b, a), gzi."""

def envelope_checkpoint_size(C: int, T: int, hop: int) -> int:
    """Doubles per batch item of the envelope op's frame-start state buffer."""

def envelope_forward_f32(x: NDArray[np.float32], b: NDArray[np.float64], a: NDArray[np.float64],
                         hop: int, alpha: float, rectify: str, out: NDArray[np.float32],
                         num_threads: int, noise_std: NDArray[np.float64] | None = None,
                         seed: int = 0, ck: NDArray[np.float64] | None = None,
                         noise_batch: int = 0) -> None:
    """Fused bank (b [C, 3] / a [C, 2] or per example [B, C, 3] / [B, C, 2]) + rectify ("abs" or
    "square") + low-pass + decimation: out [B, C, T // hop].  noise_std [C] or per example [B, C];
    noise_batch in [1, B): batch item b draws the noise of item b % noise_batch (else its own)."""

def envelope_forward_f64(x: NDArray[np.float64], b: NDArray[np.float64], a: NDArray[np.float64],
                         hop: int, alpha: float, rectify: str, out: NDArray[np.float64],
                         num_threads: int, noise_std: NDArray[np.float64] | None = None,
                         seed: int = 0, ck: NDArray[np.float64] | None = None,
                         noise_batch: int = 0) -> None:
    """Fused bank (b [C, 3] / a [C, 2] or per example [B, C, 3] / [B, C, 2]) + rectify ("abs" or
    "square") + low-pass + decimation: out [B, C, T // hop].  noise_std [C] or per example [B, C];
    noise_batch in [1, B): batch item b draws the noise of item b % noise_batch (else its own)."""

def envelope_backward_f32(x: NDArray[np.float32], b: NDArray[np.float64], a: NDArray[np.float64],
                          hop: int, alpha: float, rectify: str, gout: NDArray[np.float32],
                          gx: NDArray[np.float32], gb: NDArray[np.float64], ga: NDArray[np.float64],
                          num_threads: int, noise_std: NDArray[np.float64] | None = None,
                          seed: int = 0, gstd: NDArray[np.float64] | None = None,
                          ck: NDArray[np.float64] | None = None, noise_batch: int = 0) -> None:
    """Adjoint of envelope_forward_f32: gout [B, C, T // hop] -> gx, gb, ga (the shape of b, a) and gstd
    (the shape of noise_std)."""

def envelope_backward_f64(x: NDArray[np.float64], b: NDArray[np.float64], a: NDArray[np.float64],
                          hop: int, alpha: float, rectify: str, gout: NDArray[np.float64],
                          gx: NDArray[np.float64], gb: NDArray[np.float64], ga: NDArray[np.float64],
                          num_threads: int, noise_std: NDArray[np.float64] | None = None,
                          seed: int = 0, gstd: NDArray[np.float64] | None = None,
                          ck: NDArray[np.float64] | None = None, noise_batch: int = 0) -> None:
    """Adjoint of envelope_forward_f64: gout [B, C, T // hop] -> gx, gb, ga (the shape of b, a) and gstd
    (the shape of noise_std)."""

def gaussian_noise(seed: int, out: NDArray[np.float64], num_threads: int) -> None:
    """Fill float64 out [B, C, T] with the envelope op's noise n[b, c, t] for seed."""

def philox4x32(counter: tuple[int, int, int, int] | list[int], key: tuple[int, int] | list[int],
               rounds: int = 7) -> tuple[int, int, int, int]:
    """Philox4x32-R of a 4-word counter and a 2-word key (4 uint32 words)."""

def xylo_filterbank(x: ArrayLike, a1: ArrayLike, a2: ArrayLike, B_b: ArrayLike, B_af: ArrayLike,
                    B_wf: ArrayLike, B_in: ArrayLike, B_w: ArrayLike, B_out: ArrayLike,
                    prepend_reversed: bool, num_threads: int,
                    out: NDArray[np.int64] | None = None, reused_out: bool = True,
                    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
    """XyloAudio 3 bank: x int64 [B, T] -> (y [B, C, T], overflow kind [B, C], first overflow [B, C])."""

def xylo_spike_features(x: ArrayLike, a1: ArrayLike, a2: ArrayLike, B_b: ArrayLike,
                        B_af: ArrayLike, B_wf: ArrayLike, B_in: ArrayLike, B_w: ArrayLike,
                        B_out: ArrayLike, rate_shift1: ArrayLike, rate_shift2: ArrayLike,
                        low_pass_shift: ArrayLike, eps: ArrayLike, fixed_threshold: ArrayLike,
                        adaptive: ArrayLike, joint_normalization: bool, raster_factor: int,
                        max_spikes: int, prepend_reversed: bool, num_threads: int, /,
                        ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
    """XyloAudio 3 audio -> (counts [B, F, C], overflow kind [B, C], first overflow [B, C])."""

def xylo_spike_raster(y: ArrayLike, rate_shift1: ArrayLike, rate_shift2: ArrayLike,
                      low_pass_shift: ArrayLike, eps: ArrayLike, fixed_threshold: ArrayLike,
                      adaptive: ArrayLike, joint_normalization: bool, raster_factor: int,
                      max_spikes: int, prepend_reversed: bool, num_threads: int, /,
                      ) -> NDArray[np.int64]:
    """XyloAudio 3 divisive-normalisation spikes, rastered: y int64 [B, C, T] -> counts [B, F, C]."""

def sosfilt_checkpoint_size(B: int, C: int, T: int, S: int) -> int:
    """float64 values of the block checkpoints sosfilt_forward can keep for sosfilt_backward."""

def sosfilt_forward_f32(u: NDArray[np.float32], b: NDArray[np.float64], a: NDArray[np.float64],
                        zi: NDArray[np.float32] | None, y: NDArray[np.float32],
                        zf: NDArray[np.float32] | None, num_threads: int,
                        ck: NDArray[np.float64] | None = None) -> None:
    """Fused cascade: u [B, Cu, T], b [G, C, S, 3], a [G, C, S, 2], zi/zf [B, C, S, 2] -> y [B, C, T]."""

def sosfilt_forward_f64(u: NDArray[np.float64], b: NDArray[np.float64], a: NDArray[np.float64],
                        zi: NDArray[np.float64] | None, y: NDArray[np.float64],
                        zf: NDArray[np.float64] | None, num_threads: int,
                        ck: NDArray[np.float64] | None = None) -> None:
    """Fused cascade: u [B, Cu, T], b [G, C, S, 3], a [G, C, S, 2], zi/zf [B, C, S, 2] -> y [B, C, T]."""

def sosfilt_backward_f32(u: NDArray[np.float32], b: NDArray[np.float64], a: NDArray[np.float64],
                         zi: NDArray[np.float32] | None, gy: NDArray[np.float32],
                         gzf: NDArray[np.float32] | None, gu: NDArray[np.float32],
                         gb: NDArray[np.float64], ga: NDArray[np.float64],
                         gzi: NDArray[np.float32] | None, num_threads: int,
                         ck: NDArray[np.float64] | None = None) -> None:
    """Adjoint of sosfilt_forward_f32: gy [B, C, T] -> gu [B, Cu, T], gb, ga [G, C, S, *], gzi."""

def sosfilt_backward_f64(u: NDArray[np.float64], b: NDArray[np.float64], a: NDArray[np.float64],
                         zi: NDArray[np.float64] | None, gy: NDArray[np.float64],
                         gzf: NDArray[np.float64] | None, gu: NDArray[np.float64],
                         gb: NDArray[np.float64], ga: NDArray[np.float64],
                         gzi: NDArray[np.float64] | None, num_threads: int,
                         ck: NDArray[np.float64] | None = None) -> None:
    """Adjoint of sosfilt_forward_f64: gy [B, C, T] -> gu [B, Cu, T], gb, ga [G, C, S, *], gzi."""
