// XyloAudio 3 fixed-point band-pass filter bank (bit-exact with the chip's
// reference simulator) and the spike features computed after it.
//
// One channel is an AR stage followed by an MA stage b = (1, 0, -1):
//
//   w_new = ((x << B_wf) + ((-a2 * w[n-2] - a1 * w[n-1]) >> B_af)) >> B_b
//   y[n]  = w[n] - w[n-2]
//
// with arithmetic (flooring) right shifts and the AR output latched one
// sample (y at sample n sees the state computed from samples < n).  All
// arithmetic is int64.  No Python headers.
#pragma once

#include <cstdint>

namespace learnafe {
namespace xylo {

// Overflow kinds reported per (signal, channel).  The reference simulator
// raises on the first of these it checks (input, then AR state, then output).
enum OverflowKind : int32_t {
    kNoOverflow = 0,
    kInputOverflow = 1,   // |x| >= 2^(B_in - 1)
    kStateOverflow = 2,   // |w| >= 2^(B_w - 1), B_w = B_in + B_worst_case + B_wf
    kOutputOverflow = 3,  // |y| >= 2^(B_out - 1)
};

// Per-channel integer configuration (one row of the chip's filter table).
struct Channel {
    int64_t a1;
    int64_t a2;
    int32_t B_b;
    int32_t B_af;
    int32_t B_wf;
    int32_t B_in;
    int32_t B_w;
    int32_t B_out;
};

// Where `filterbank` writes: y [B, C, T]; overflow_kind [B, C] receives an
// OverflowKind, overflow_sample [B, C] the first offending sample index
// relative to the returned signal (negative inside the reversed prefix), or
// INT64_MIN when there was none.  stream_large: write outputs of kStreamBytes
// (8 MiB) or more with streaming (non-temporal) stores.  Pass false for a
// freshly allocated y: the operating system has just zeroed its pages through
// the caches, and streaming stores would first have to write those dirty
// lines back.
struct BankOutput {
    int64_t* y;
    int32_t* overflow_kind;
    int64_t* overflow_sample;
    bool stream_large = true;
};

// Filter x [B, T] with C channels into out.y [B, C, T].
//
// prepend_reversed: filter the sequence (x reversed, x) and keep only the last
// T outputs (the reference's trick against the start-up transient).  Once a
// channel's state leaves the range where int64 products are exact, the rest
// of that channel is written as 0 (it is flagged kStateOverflow long before).
void filterbank(const int64_t* x, int64_t B, int64_t T, const Channel* ch, int64_t C,
                bool prepend_reversed, const BankOutput& out, int num_threads);

// Divisive-normalisation spike generation followed by spike-count rastering,
// fused (the per-sample spikes are never stored).
struct SpikeConfig {
    const int64_t* rate_shift1;      // [C] b1 of the threshold (M << b1) - (M << b2)
    const int64_t* rate_shift2;      // [C] b2
    const int64_t* low_pass_shift;   // [C] averaging window 2^b samples
    const int64_t* eps;              // [C] lower bound of the adaptive threshold
    const int64_t* fixed_threshold;  // [C] threshold when adaptive mode is off
    const uint8_t* adaptive;         // [C] 1 = divisive normalisation, 0 = fixed
    bool joint_normalization;        // one threshold (max over channels) for all
    int64_t raster_factor;           // samples per raster frame
    int64_t max_spikes;              // spike count clip per frame
};

// Number of raster frames for T samples: ceil(T / factor).
int64_t raster_frames(int64_t T, int64_t factor);

// y [B, C, T] filter outputs -> counts [B, F, C] spike counts per frame.
// prepend_reversed as above (the reference's spike generator also filters the
// reversed signal first).
void spike_raster(const int64_t* y, int64_t B, int64_t C, int64_t T, const SpikeConfig& cfg,
                  bool prepend_reversed, int64_t* counts, int num_threads);

// Audio -> spike counts in one call (rockpool's AFESim chain): the filter bank
// (as `filterbank`) and the spike generator and raster (as `spike_raster`),
// fused per signal.  Each thread filters one signal at a time into its own
// [C, T] buffer, which the vectorised spike generator consumes while it is
// still in the caches; the [B, C, T] filter output is never formed.
// counts [B, F, C]; overflow_kind / overflow_sample [B, C] as in `filterbank`
// (a signal's counts are computed from the filter output whatever its
// overflow status; the caller decides whether an overflow is an error).
void spike_features(const int64_t* x, int64_t B, int64_t T, const Channel* ch, int64_t C,
                    const SpikeConfig& cfg, bool prepend_reversed, int64_t* counts,
                    int32_t* overflow_kind, int64_t* overflow_sample, int num_threads);

}  // namespace xylo
}  // namespace learnafe
