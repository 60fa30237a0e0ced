// XyloAudio 3 kernels: what the filter-bank dispatch, the vector lanes and the
// spike generator share (exactness bounds, the vector path's lane layout, the
// ISA path in use).  Internal to the kernels; no Python headers.
#pragma once

#include <cmath>
#include <cstdint>

#include "xylo_filterbank.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define XYLO_X86 1
#else
#define XYLO_X86 0
#endif

namespace learnafe {
namespace xylo {
namespace detail {

inline int64_t iabs(int64_t v) { return v < 0 ? -v : v; }
// Vector-path bound: while |w| < 2^36, a * w (|a| <= 2^15) stays below 2^51
// and a1 w1 + a2 w2 below 2^52; with the input term x 2^(B_wf + B_af) below
// 2^52 (checked per channel by simd_exact) every sum stays below 2^53, so the
// arithmetic is exact in double lanes.  A lane that reaches the bound is redone
// by the int64 path.  Every channel with B_w - 1 < 36 flags a state overflow
// before reaching it.
constexpr int64_t kSafeState = int64_t(1) << 36;
constexpr int kMaxSimdBw = 36;

// Whether a channel's recursion is exact in double lanes (see kSafeState).
inline bool simd_exact(const Channel& c) {
    return c.B_w - 1 < kMaxSimdBw && c.B_af >= 0 && c.B_b >= 0 && c.B_wf >= 0 &&
           c.B_af + c.B_b <= 60 && (c.B_in - 1) + c.B_wf + c.B_af <= 52 &&
           iabs(c.a1) <= (int64_t(1) << 15) && iabs(c.a2) <= (int64_t(1) << 15);
}

// The int64 path's bound: once |w| reaches it a channel's output is written as
// 0 from then on (it has been flagged as a state overflow long before: every
// channel with B_w - 1 < 37 overflows first).  Below it every product and sum
// stays well inside int64.
inline int64_t safe_state(const Channel& c) {
    return c.B_w - 1 < 37 ? (int64_t(1) << 37) : (int64_t(1) << std::min(c.B_w, 46));
}

// Sample n of the processed sequence: (x reversed, x) or x.
inline int64_t sample_at(const int64_t* x, int64_t T, int64_t n, bool rev) {
    if (!rev) return x[n];
    return n < T ? x[T - 1 - n] : x[n - T];
}

// The ISA path of the xylo kernels: the best the CPU has, capped by
// LEARNAFE_ISA (generic, avx2, avx512; as the biquad kernels) and by
// LEARNAFE_XYLO_SIMD (0 = int64 scalars, 4 = AVX2 lanes, 8 = AVX-512 lanes).
enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };
Isa isa();

// Vector width of the filter bank's lanes on that path (0: int64 scalars).
int simd_width();

// ------------------------------------------------------------ vector path ---
//
// The same recursion in double lanes, one lane per channel, exact because all
// values stay below 2^53 while |w| < 2^36 (see kSafeState).  The two shifts
// are fused: for integers u, v and m = 2^B_b,
//   ((u << B_wf) + (v >> B_af)) >> B_b = floor((u 2^(B_wf+B_af) + v) 2^-(B_af+B_b))
// (floor(A + floor(z)) = A + floor(z) for integer A, floor(floor(z) / m) =
// floor(z / m)).  Scaling by a power of two is exact, so with
// na = -a 2^-(B_af+B_b) and xs = 2^(B_wf-B_b) the new state is
//   floor(fma(na1, w1, fma(na2, w2, x xs)))
// where each fma rounds nothing (its exact result is an integer below 2^53
// times 2^-(B_af+B_b)).  The serial dependency per sample is one fma and
// one floor.  K independent
// (signal, channel-group) chains are interleaved per time step to hide the
// latency of the serial recursion.  A lane that reaches kSafeState is redone
// by the int64 path (which defines what happens after such an overflow).

constexpr int kBlock = 128;

struct GroupParams {  // 8 lanes (W <= 8 used)
    double na1[8], na2[8], xs[8], wlim[8], ylim[8];
};

struct LaneResult {
    int64_t first_state = -1, first_out = -1;
    bool unsafe = false;
    bool wide = false;  // some |w| >= 2^30: |y| may not fit the int32 stage
};

// Bound below which |y| = |w[n-1] - w[n-3]| < 2^31 fits the int32 stage.
constexpr double kStageState = double(int64_t(1) << 30);

// One independent recursion: one signal through one group of W channels.
struct Chain {
    const int64_t* x;       // the signal [T]
    const GroupParams* gp;  // the group's lane parameters
    int64_t* y;             // output row of the group's first channel ([lane][T])
    int lanes;              // valid lanes (channels) in the group
    LaneResult* res;        // [W]
    // Staged output (the fused spike features): instead of the rows of y, |y|
    // of the returned samples as int32 in a sample-major stage [T][16], this
    // group's lanes in columns stage_col..; nullptr: the rows of y.
    int32_t* stage = nullptr;
    int stage_col = 0;
    // Write the rows of y with non-temporal (streaming) stores: for outputs
    // far larger than the caches (see kStreamBytes), the stores then skip the
    // read-for-ownership of every line, and the output does not evict the
    // working set.
    bool stream = false;
};

// Outputs of at least this many bytes are written with streaming stores.
constexpr int64_t kStreamBytes = int64_t(8) << 20;

// Runs K (1..4) chains of W (4 or 8) lanes through the whole sequence.
void run_unit(int W, int K, const Chain* ch, int64_t T, bool rev);

// Number of int32 columns of a stage row (one per spike-generator lane).
constexpr int kStageCols = 16;

// Signals per call of `filter_staged` (enough chains to fill a unit of 4), or 0
// when the staged path cannot be exact for this bank (no vector path, a
// channel the vector lanes cannot do exactly, more than kStageCols channels).
int staged_signals_per_unit(const Channel* ch, int64_t C);

// nsig (<= staged_signals_per_unit) consecutive signals x [nsig, T] through the
// vector lanes into their stages (see Chain; columns >= C are left as they
// are).  ok[j]: the stage holds exactly |y| of every channel of signal j (no
// input sample out of range, no lane's state reaches 2^30); kind / where
// [nsig, C] receive its overflow report then.  Otherwise the caller computes
// signal j with `filterbank`.
void filter_staged(const int64_t* x, int nsig, int64_t T, const Channel* ch, int64_t C, bool rev,
                   int32_t* const* stages, int32_t* kind, int64_t* where, bool* ok);

// ------------------------------------------------------ spike generator ---
//
// The divisive-normalisation generator of `spike_raster` for one signal of
// C <= kSpikeLanes channels held in 16 int64 lanes (xylo_spike_lanes.cpp):
// generic C++, or AVX2 / AVX-512 on the ISA path.  prepend_reversed as in
// `spike_raster`; counts [F, C].
constexpr int kSpikeLanes = 16;
static_assert(kStageCols == kSpikeLanes, "one stage column per generator lane");

// From the int64 filter output rows y [C, T].
void spike_signal(const int64_t* y, int64_t C, int64_t T, const SpikeConfig& cfg, bool rev,
                  int64_t* counts);

// From the int32 stage [T][kStageCols] of `filter_staged` (x86 vector paths only).
void spike_signal_staged(const int32_t* stage, int64_t C, int64_t T, const SpikeConfig& cfg, bool rev,
                         int64_t* counts);

}  // namespace detail
}  // namespace xylo
}  // namespace learnafe
