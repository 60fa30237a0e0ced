#include "xylo_filterbank.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <vector>

#include "parallel.h"

namespace learnafe {
namespace xylo {

namespace {

// |w| at or above this bound would let a1 * w (|a1| < 2^16) approach the
// int64 range; every chip configuration flags a state overflow far below it
// (B_w - 1 <= 44 for 4-bit shift registers).
constexpr int64_t kSafeState = int64_t(1) << 46;

inline int64_t iabs(int64_t v) { return v < 0 ? -v : v; }

// Sample n of the processed sequence: (x reversed, x) or x.
inline int64_t sample_at(const int64_t* x, int64_t T, int64_t n, bool rev) {
    if (!rev) return x[n];
    return n < T ? x[T - 1 - n] : x[n - T];
}

void run_channel(const int64_t* x, int64_t T, const Channel& c, bool rev, int64_t* y,
                 int32_t* kind, int64_t* where, int64_t first_bad_input) {
    const int64_t N = rev ? 2 * T : T;
    const int64_t offset = rev ? T : 0;  // outputs kept from this index on
    *kind = kNoOverflow;
    *where = INT64_MIN;
    if (first_bad_input >= 0) {
        // The reference refuses the whole signal; nothing is computed.
        std::fill(y, y + T, int64_t(0));
        *kind = kInputOverflow;
        *where = first_bad_input - offset;
        return;
    }
    const int64_t w_lim = int64_t(1) << (c.B_w - 1);
    const int64_t y_lim = int64_t(1) << (c.B_out - 1);
    const int64_t wf_mul = int64_t(1) << c.B_wf;  // x << B_wf without UB on negatives
    const int B_af = c.B_af, B_b = c.B_b;
    const int64_t a1 = c.a1, a2 = c.a2;
    int64_t w1 = 0, w2 = 0;      // w_new(n-1), w_new(n-2)
    int64_t v1 = 0, v2 = 0;      // latched outputs v[n-1], v[n-2]
    int64_t first_state = -1, first_out = -1;
    for (int64_t n = 0; n < N; ++n) {
        // Latched AR output: the state computed at the previous sample.
        const int64_t v = w1;
        const int64_t out = v - v2;  // MA b = (1, 0, -1)
        if (first_state < 0 && iabs(v) >= w_lim) first_state = n;
        if (first_out < 0 && iabs(out) >= y_lim) first_out = n;
        if (n >= offset) y[n - offset] = out;
        if (iabs(w1) >= kSafeState) {
            // Beyond exact int64 range; already flagged as a state overflow.
            for (int64_t m = std::max(n + 1, offset); m < N; ++m) y[m - offset] = 0;
            break;
        }
        const int64_t s = sample_at(x, T, n, rev);
        int64_t w = s * wf_mul + ((-a2 * w2 - a1 * w1) >> B_af);
        w >>= B_b;  // arithmetic shift (floor), as the chip
        w2 = w1;
        w1 = w;
        v2 = v1;
        v1 = v;
    }
    if (first_state >= 0) {
        *kind = kStateOverflow;
        *where = first_state - offset;
    } else if (first_out >= 0) {
        *kind = kOutputOverflow;
        *where = first_out - offset;
    }
}

}  // namespace

void filterbank(const int64_t* x, int64_t B, int64_t T, const Channel* ch, int64_t C,
                bool prepend_reversed, int64_t* y, int32_t* overflow_kind,
                int64_t* overflow_sample, int num_threads) {
    const int nt = resolve_threads(num_threads);
    // One work item per (signal, channel); each finds its first out-of-range
    // input sample (B_in may differ per channel) before filtering.
    const int64_t work = B * C;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t k = 0; k < work; ++k) {
        const int64_t b = k / C, c = k % C;
        const int64_t* xb = x + b * T;
        const int64_t lim = int64_t(1) << (ch[c].B_in - 1);
        int64_t bad = -1;
        const int64_t N = prepend_reversed ? 2 * T : T;
        for (int64_t n = 0; n < N; ++n) {
            if (iabs(sample_at(xb, T, n, prepend_reversed)) >= lim) {
                bad = n;
                break;
            }
        }
        run_channel(xb, T, ch[c], prepend_reversed, y + (b * C + c) * T, overflow_kind + k,
                    overflow_sample + k, bad);
    }
}

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

}  // namespace xylo
}  // namespace learnafe
