// Biquad filter bank kernels: forward, adjoint (backward) and the fused
// rectify + low-pass envelope + decimation op.  Plain C++17 + OpenMP, raw
// row-major buffers, no Python.
//
// Model (one mono input per batch item, C channels with their own sections):
//
//   v_c[n] = x[n] - a1_c v_c[n-1] - a2_c v_c[n-2]          (all-pole part)
//   y_c[n] = b0_c v_c[n] + b1_c v_c[n-1] + b2_c v_c[n-2]   (FIR part)
//
// i.e. direct form II: v = x / A_c(z), then y = B_c(z) v.  `forward`
// implements it.
//
// Adjoint (`backward`; per channel, one reverse-time recursion, the
// `Adjoint::step` of biquad_recursion.h), with gy = dL/dy and
// lambda = dL/dv, which is also the channel's share of dL/dx:
//
//   gv[m]     = b0 gy[m] + b1 gy[m+1] + b2 gy[m+2]
//   lambda[m] = gv[m] - a1 lambda[m+1] - a2 lambda[m+2]      (m = T-1 .. 0)
//   dL/db_k   =  sum_n gy[n] v[n-k]       (k = 0, 1, 2)
//   dL/da_k   = -sum_n lambda[n] v[n-k]   (k = 1, 2)
//   dL/dx[n]  =  sum_c lambda_c[n]
//
// v is recomputed from checkpoints of the state, not stored.
// The state of a section is the delay line
// (v[n-1], v[n-2]); `zi`/`zf` buffers are [B, C, 2] holding (v[-1], v[-2])
// before the first sample and (v[T-1], v[T-2]) after the last one.
//
// Arithmetic: whatever the I/O type F of the signals (float or double), the
// coefficients are given in double and the recursion, the state and every
// gradient accumulator are double (coefficient gradients are returned in
// double).  Each sum of products above is evaluated as a chain of fused
// multiply-adds in the order written (e.g. v = fma(-a1, v[n-1],
// fma(-a2, v[n-2], x))), explicitly on every instruction-set path, so all
// paths round identically.
// Channels are processed in blocks of 4, 8 or 16 lanes (SIMD across
// channels), batch items x channel blocks are distributed over OpenMP
// threads, and each (batch item, channel block) is computed by one thread in
// a fixed order, so results are bitwise identical for any thread count.
//
// Envelope (fused op), per channel, with r[n] = |y[n]| or y[n]^2:
//
//   e[n] = e[n-1] + alpha (r[n] - e[n-1]),  e[-1] = 0,
//   alpha = 1 - exp(-1 / (tau * sample_rate)),
//   out[f] = e[(f + 1) * hop - 1],  f = 0 .. F-1,  F = T / hop (floor).
//
// The envelope backward never stores the [B, C, T] signal: it starts from
// the filter state at each frame boundary (F x 2 doubles per lane, saved by
// the forward pass or recomputed) and the reverse pass recomputes one frame
// at a time in a (hop + 2)-sample buffer per thread.  The optional
// input-referred noise (per channel or per (batch item, channel) std,
// counter-based generator keyed by (seed, batch item, channel, sample)) is
// regenerated, never stored.
#pragma once

#include <cstdint>

namespace learnafe {
namespace biquad {

enum class Rectify : int { Abs = 0, Square = 1 };

// Number of doubles of the checkpoint buffer `forward` can fill for `backward`
// (the filter state every 128 samples, per batch item and channel block).
int64_t checkpoint_doubles(int64_t B, int64_t T, int64_t C);

// Per-example coefficients: with per_example, b is [B, C, 3] and a [B, C, 2]
// (batch item bi filtered by its own bank) and the coefficient gradients of
// the backward kernels are per batch item, gb [B, C, 3], ga [B, C, 2] (not
// summed); otherwise b [C, 3], a [C, 2] are shared and gb, ga summed over the
// batch.  A per-example bank equal for every item gives bitwise the shared
// results.
//
// y: [B, C, T]; zi (optional, may be null), zf (optional, may be null): [B, C, 2].
// checkpoints (optional): checkpoint_doubles(B, T, C) doubles, filled with the
// filter state at the start of every 128-sample block; handed to `backward`
// with the same x, b, a, zi it saves the backward pass one recursion over x.
template <class F>
void forward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
             const F* zi, F* y, F* zf, int num_threads, double* checkpoints = nullptr,
             bool per_example = false);

// Adjoint of `forward`.  gy: [B, C, T]; gzf (optional): [B, C, 2], gradient
// w.r.t. the final state.  Outputs: gx [B, T], gb [C, 3], ga [C, 2] (summed
// over the batch), gzi (optional) [B, C, 2].  checkpoints (optional): the
// buffer a `forward` call with the same x, b, a, zi filled; results are
// bitwise the same with or without it.
template <class F>
void backward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
              const F* zi, const F* gy, const F* gzf, F* gx, double* gb, double* ga, F* gzi,
              int num_threads, const double* checkpoints = nullptr, bool per_example = false);

// Fused envelope: out [B, C, T / hop].
//
// Input-referred noise (optional): with noise_std [C] given, channel c
// filters x[b, t] + noise_std[c] * n[b, c, t] (computed in double) instead of
// x[b, t], where n is the standard normal noise of `gaussian_noise` for
// `seed` (Philox4x32-7 + Box-Muller keyed by (seed, b, c, t), see
// counter_rng.h).  With std_per_example, noise_std is [B, C] and batch item
// b uses its row noise_std[b, c].  noise_batch (1 <= noise_batch < B; any
// other value: B) keys batch item b by b % noise_batch instead of b, so a
// batch of K groups of noise_batch items (e.g. K chips x the same clips)
// gives every group the noise of the first group's call alone.  Nothing of
// size [B, C, T] is stored: the backward pass regenerates the same noise.
// noise_std = null: no noise, seed and noise_batch unused.
//
// ck (optional, may be null): [B, envelope_checkpoint_size(C, T, hop)]
// doubles; the forward writes the filter state at every frame start into it
// and the backward, given the same buffer, starts from it instead of running
// the recursion over the signal once more.
template <class F>
void envelope_forward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                      int64_t hop, double alpha, Rectify rectify, const double* noise_std,
                      uint64_t seed, F* out, double* ck, int num_threads, bool per_example = false,
                      bool std_per_example = false, int64_t noise_batch = 0);

// Adjoint of `envelope_forward` (same noise_std, seed, noise_batch; ck from
// the forward or null).  gout: [B, C, T / hop].  Outputs gx [B, T], gb [C, 3],
// ga [C, 2], and with noise gstd [C] (d/dstd[c] = sum over b, t of
// dL/d(input of channel c)[b, t] * n[b, c, t]; may be null), or with
// std_per_example gstd [B, C] (that sum over t alone, per batch item).  All
// reductions over the batch run in batch order: bitwise identical for any
// thread count.
template <class F>
void envelope_backward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                       int64_t hop, double alpha, Rectify rectify, const double* noise_std,
                       uint64_t seed, const double* ck, const F* gout, F* gx, double* gb,
                       double* ga, double* gstd, int num_threads, bool per_example = false,
                       bool std_per_example = false, int64_t noise_batch = 0);

// Doubles per batch item of the envelope checkpoint buffer.
int64_t envelope_checkpoint_size(int64_t C, int64_t T, int64_t hop);

// The envelope op's noise n[b, c, t] for b < B, c < C, t < T: out [B, C, T]
// doubles (exactly the values the kernels add, scaled by noise_std).
void gaussian_noise(uint64_t seed, int64_t B, int64_t C, int64_t T, double* out, int num_threads);

// Name of the instruction set the kernels dispatch to on this machine
// ("avx512", "avx2" or "generic").
const char* isa_name();

}  // namespace biquad
}  // namespace learnafe
