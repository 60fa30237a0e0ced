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

// y [B, C, T]; zf [B, C, S, 2] or null.
template <class F>
void cascade_forward(const Cascade<F>& p, F* y, F* zf, int num_threads);

// Adjoint of cascade_forward: gy [B, C, T], gzf [B, C, S, 2] or null ->
// gu [B, Cu, T], gb [G, C, S, 3], ga [G, C, S, 2] (float64), gzi [B, C, S, 2]
// or null.  The forward states are recomputed from checkpoints every
// kCascadeBlock samples kept in per-thread scratch.
template <class F>
void cascade_backward(const Cascade<F>& p, const F* gy, const F* gzf, F* gu, double* gb, double* ga, F* gzi,
                      int num_threads);

}  // namespace sosfilt
}  // namespace learnafe
