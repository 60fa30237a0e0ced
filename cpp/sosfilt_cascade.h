// Cascades of second-order sections (scipy.signal.sosfilt's direct form II
// transposed), all S sections fused per sample: every signal of u is read
// once and every output written once.  Signals are the B x C rows (batch
// item i, channel c) of y; lanes of a SIMD block are W consecutive channels
// of one batch item, time is processed in blocks transposed into lane-major
// scratch.  Arithmetic is double for float32 and float64 signals, with
// explicit fused multiply-adds, so results are bitwise identical on every
// instruction-set path and for every thread count.
#pragma once

#include <cstdint>

namespace learnafe {
namespace sosfilt {

// u [B, Cu, T] (Cu 1: one input for every channel, or C), b [G, C, S, 3],
// a [G, C, S, 2] (normalised by a0; G 1: shared, or B: one set per batch
// item), zi [B, C, S, 2] or null (zero state).
template <class F>
struct Cascade {
    const F* u;
    int64_t B, Cu, C, T, S, G;
    const double* b;
    const double* a;
    const F* zi;
};

// Doubles of the block checkpoints of a cascade: the state of every section
// at the start of every 64-sample block, for every unit of
// lanes (the layout is the kernels' own; only its size is public).
int64_t checkpoint_doubles(int64_t B, int64_t C, int64_t T, int64_t S);

// y [B, C, T]; zf [B, C, S, 2] or null; ck null, or checkpoint_doubles(B, C,
// T, S) doubles that receive the block checkpoints the backward needs (so
// that cascade_backward does not run the forward again to find them).
template <class F>
void cascade_forward(const Cascade<F>& p, F* y, F* zf, int num_threads, double* ck = nullptr);

// Adjoint of cascade_forward: gy [B, C, T], gzf [B, C, S, 2] or null ->
// gu [B, Cu, T], gb [G, C, S, 3], ga [G, C, S, 2] (float64), gzi [B, C, S, 2]
// or null.  The forward states are recomputed from checkpoints every
// 64 samples: ck, those cascade_forward kept, or (ck null) found by
// a first forward pass into per-thread scratch.  Bitwise the same either way.
template <class F>
void cascade_backward(const Cascade<F>& p, const F* gy, const F* gzf, F* gu, double* gb, double* ga, F* gzi,
                      int num_threads, const double* ck = nullptr);

}  // namespace sosfilt
}  // namespace learnafe
