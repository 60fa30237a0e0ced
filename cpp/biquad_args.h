// Argument structs of the biquad kernels: the bank every kernel reads
// (signal, sizes, coefficients packed per channel block), then one struct per
// kernel with only the buffers that kernel uses.
#pragma once

#include <cstdint>

#include "biquad_filterbank.h"

namespace learnafe {
namespace biquad {
namespace detail {

// The input signal x [B, T] and the bank: C channels in nblk blocks of W
// lanes.  Coefficients packed per channel block: b0[W] b1[W] b2[W] a1[W]
// a2[W], zero-padded (a padded lane has v = x and y = 0: harmless, never
// written); coef_stride: doubles from one batch item's packed coefficients
// to the next (0: one bank shared by the batch; nblk * 5 * W: per example).
template <class F>
struct Bank {
    const F* x = nullptr;
    int64_t B = 0, T = 0, C = 0;
    int W = 0;
    int64_t nblk = 0;
    const double* coef = nullptr;
    int64_t coef_stride = 0;
};

// Gradient outputs of a backward kernel: gx [B, T] (or per-block partials
// gx_part [B][nblk][T] in double when nblk > 1) and per-(batch item, channel)
// partials of gb/ga in double, gba_part [B, C, 5]: gb0 gb1 gb2 ga1 ga2.
template <class F>
struct GradOut {
    F* gx = nullptr;
    double* gx_part = nullptr;
    double* gba_part = nullptr;
};

// Plain forward: zi, zf [B, C, 2] (optional), y [B, C, T]; stream: write y
// with streaming stores; ck_out (optional): the filter state at the start of
// every kTimeBlock samples per unit ([B * nblk][nb][2][W] doubles).
template <class F>
struct ForwardArgs : Bank<F> {
    const F* zi = nullptr;
    F* y = nullptr;
    F* zf = nullptr;
    bool stream = false;
    double* ck_out = nullptr;
};

// Plain backward: zi, gzf, gzi [B, C, 2] (optional), gy [B, C, T]; ck_in
// (optional): the block-start states a forward pass wrote (ck_out).
template <class F>
struct BackwardArgs : Bank<F>, GradOut<F> {
    const F* zi = nullptr;
    const F* gy = nullptr;
    const F* gzf = nullptr;
    F* gzi = nullptr;
    const double* ck_in = nullptr;
};

// The envelope of the fused op: frames = T / hop, rectifier, smoothing
// alpha, input-referred noise (per-lane std packed per channel block
// [nblk][W], zero padded, or null; std_stride: doubles from one batch item's
// packed std to the next, 0 when shared), its seed and noise_batch (batch
// item bi draws the noise keyed by bi % noise_batch).
struct Envelope {
    int64_t hop = 1, frames = 0;
    double alpha = 0.0;
    Rectify rectify = Rectify::Abs;
    const double* noise_std = nullptr;
    int64_t std_stride = 0;
    uint64_t seed = 0;
    int64_t noise_batch = 1;
};

// Fused envelope forward: out [B, C, frames]; ck (optional): frame-start
// states [B][nblk][frames][2][W], written.
template <class F>
struct EnvForwardArgs : Bank<F>, Envelope {
    F* out = nullptr;
    double* ck = nullptr;
};

// Fused envelope backward: gout [B, C, frames]; ck (optional): the
// frame-start states of the forward, read; gstd_part: per-(batch item,
// channel) partials of d/dstd [B, C] (with noise).
template <class F>
struct EnvBackwardArgs : Bank<F>, Envelope, GradOut<F> {
    const F* gout = nullptr;
    const double* ck = nullptr;
    double* gstd_part = nullptr;
};

// The noise generator alone: out [B, C, T] (x and coefficients unused).
template <class F>
struct NoiseArgs : Bank<F> {
    uint64_t seed = 0;
    F* out = nullptr;
};

}  // namespace detail
}  // namespace biquad
}  // namespace learnafe
