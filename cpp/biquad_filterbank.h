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
// `Adjoint::step` of biquad_filterbank.cpp), with gy = dL/dy and
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
// double).
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
// The envelope backward never stores the [B, C, T] signal: the forward pass
// keeps the filter state at each frame boundary (F x 2 doubles per lane) and
// the reverse pass recomputes one frame at a time in a (hop + 2)-sample
// buffer per thread.
#pragma once

#include <cstdint>

namespace learnafe {
namespace biquad {

enum class Rectify : int { Abs = 0, Square = 1 };

// y: [B, C, T]; zi (optional, may be null), zf (optional, may be null): [B, C, 2].
template <class F>
void forward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
             const F* zi, F* y, F* zf, int num_threads);

// Adjoint of `forward`.  gy: [B, C, T]; gzf (optional): [B, C, 2], gradient
// w.r.t. the final state.  Outputs: gx [B, T], gb [C, 3], ga [C, 2] (summed
// over the batch), gzi (optional) [B, C, 2].
template <class F>
void backward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
              const F* zi, const F* gy, const F* gzf, F* gx, double* gb, double* ga, F* gzi,
              int num_threads);

// Fused envelope: out [B, C, T / hop].
template <class F>
void envelope_forward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                      int64_t hop, double alpha, Rectify rectify, F* out, int num_threads);

// Adjoint of `envelope_forward`.  gout: [B, C, T / hop].  Outputs gx [B, T],
// gb [C, 3], ga [C, 2].
template <class F>
void envelope_backward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                       int64_t hop, double alpha, Rectify rectify, const F* gout, F* gx,
                       double* gb, double* ga, int num_threads);

// Name of the instruction set the kernels dispatch to on this machine
// ("avx512", "avx2" or "generic").
const char* isa_name();

}  // namespace biquad
}  // namespace learnafe
