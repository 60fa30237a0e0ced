// XyloAudio 3 spike features: the reference divisive-normalisation spike
// generator and raster (rockpool's AFESim chain after the filter bank, any
// number of channels), and the fused audio -> counts kernel that drives the
// filter bank and the 16-lane generators of xylo_spike_lanes.cpp per signal.
#include <omp.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "parallel.h"
#include "xylo_lanes.h"

namespace learnafe {
namespace xylo {

using namespace detail;

int64_t raster_frames(int64_t T, int64_t factor) { return (T + factor - 1) / factor; }

void spike_raster(const int64_t* y, int64_t B, int64_t C, int64_t T, const SpikeConfig& cfg,
                  bool prepend_reversed, int64_t* counts, int num_threads) {
    const int nt = resolve_threads(num_threads);
    const int64_t F = raster_frames(T, cfg.raster_factor);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t b = 0; b < B; ++b) {
        const int64_t* yb = y + b * C * T;
        int64_t* cb = counts + b * F * C;
        std::fill(cb, cb + F * C, int64_t(0));
        std::vector<int64_t> high(C, 0), low(C, 0), iaf(C, 0), thr(C, 0), acc(C, 0);
        const int64_t N = prepend_reversed ? 2 * T : T;
        const int64_t offset = prepend_reversed ? T : 0;
        for (int64_t n = 0; n < N; ++n) {
            const int64_t t = n - offset;  // index in the returned timeline
            int64_t joint = INT64_MIN;
            for (int64_t c = 0; c < C; ++c) {
                const int64_t* yc = yb + c * T;
                const int64_t r = iabs(prepend_reversed ? (n < T ? yc[T - 1 - n] : yc[n - T])
                                                        : yc[n]);
                // Low-pass power estimate (the threshold uses the value before
                // this sample is added).
                low[c] = high[c] >> cfg.low_pass_shift[c];
                high[c] = high[c] - low[c] + r;
                int64_t m = low[c] < cfg.eps[c] ? cfg.eps[c] : low[c];
                m = m * (int64_t(1) << cfg.rate_shift1[c]) - m * (int64_t(1) << cfg.rate_shift2[c]);
                thr[c] = m;
                if (m > joint) joint = m;
                acc[c] = r;
            }
            for (int64_t c = 0; c < C; ++c) {
                const int64_t adaptive = cfg.joint_normalization ? joint : thr[c];
                const int64_t th = cfg.adaptive[c] ? adaptive : cfg.fixed_threshold[c];
                iaf[c] += acc[c];
                if (iaf[c] >= th) {
                    iaf[c] -= th;
                    if (t >= 0) ++cb[(t / cfg.raster_factor) * C + c];
                }
            }
        }
        for (int64_t i = 0; i < F * C; ++i) cb[i] = std::min(cb[i], cfg.max_spikes);
    }
}


void spike_features(const int64_t* x, int64_t B, int64_t T, const Channel* ch, int64_t C,
                    const SpikeConfig& cfg, bool prepend_reversed, int64_t* counts,
                    int32_t* overflow_kind, int64_t* overflow_sample, int num_threads) {
    const int64_t F = raster_frames(T, cfg.raster_factor);
    // Staged path: per unit of `per` signals the vector lanes write |y| as int32
    // into sample-major stages [T][16] that the generator reads directly (no
    // [C, T] rows, no transposes); a signal it cannot do exactly, and every
    // signal when it is off, goes through `filterbank` into one [C, T] buffer.
    const int per = XYLO_X86 ? std::max(1, staged_signals_per_unit(ch, C)) : 1;
    const bool staged = XYLO_X86 && staged_signals_per_unit(ch, C) > 0;
    const int64_t units = (B + per - 1) / per;
    const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(resolve_threads(num_threads), units)));
#pragma omp parallel num_threads(nt)
    {
        std::vector<int64_t> y;         // [C, T], allocated on first use
        std::vector<int32_t> stage_mem;  // per signals' stages [T][16], zero columns >= C
        if (staged) stage_mem.assign(static_cast<size_t>(per * T * kStageCols), 0);
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < units; ++u) {
            const int64_t b0 = u * per;
            const int n = int(std::min<int64_t>(per, B - b0));
            bool ok[4] = {false, false, false, false};
            int32_t* stages[4];
            for (int j = 0; j < n && staged; ++j) stages[j] = stage_mem.data() + j * T * kStageCols;
            if (staged)
                filter_staged(x + b0 * T, n, T, ch, C, prepend_reversed, stages, overflow_kind + b0 * C,
                              overflow_sample + b0 * C, ok);
            for (int j = 0; j < n; ++j) {
                const int64_t b = b0 + j;
#if XYLO_X86
                if (ok[j]) {
                    spike_signal_staged(stages[j], C, T, cfg, prepend_reversed, counts + b * F * C);
                    continue;
                }
#endif
                if (y.empty()) y.resize(static_cast<size_t>(C * T));
                filterbank(x + b * T, 1, T, ch, C, prepend_reversed,
                           {y.data(), overflow_kind + b * C, overflow_sample + b * C}, 1);
                if (C <= kSpikeLanes) {
                    spike_signal(y.data(), C, T, cfg, prepend_reversed, counts + b * F * C);
                } else {
                    spike_raster(y.data(), 1, C, T, cfg, prepend_reversed, counts + b * F * C, 1);
                }
            }
        }
    }
}

}  // namespace xylo
}  // namespace learnafe