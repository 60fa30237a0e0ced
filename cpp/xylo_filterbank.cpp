// XyloAudio 3 filter bank: the int64 reference recursion (every channel the
// vector lanes cannot do exactly), the ISA choice, and the dispatch of
// (signal, channel-group) chains to the vector lanes and of the rest to int64.
#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "parallel.h"
#include "xylo_lanes.h"

namespace learnafe {
namespace xylo {

using namespace detail;

namespace {

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
    const int64_t safe = safe_state(c);
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
        if (iabs(w1) >= safe) {
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


// The vector lanes' parameters of the channel groups of W lanes (see GroupParams).
std::vector<GroupParams> group_params(const Channel* ch, int64_t C, int W) {
    const int64_t groups = (C + W - 1) / W;
    std::vector<GroupParams> gps(groups);
    for (int64_t g = 0; g < groups; ++g) {
        GroupParams& p = gps[g];
        for (int l = 0; l < 8; ++l) {
            const int64_t c = g * W + l;
            if (l < W && c < C) {
                const int sh = ch[c].B_af + ch[c].B_b;
                p.na1[l] = std::ldexp(-double(ch[c].a1), -sh);
                p.na2[l] = std::ldexp(-double(ch[c].a2), -sh);
                p.xs[l] = std::ldexp(1.0, ch[c].B_wf - ch[c].B_b);
                p.wlim[l] = double(int64_t(1) << (ch[c].B_w - 1));
                p.ylim[l] = double(int64_t(1) << (ch[c].B_out - 1));
            } else {
                p.na1[l] = p.na2[l] = p.xs[l] = 0.0;
                p.wlim[l] = p.ylim[l] = 1e300;
            }
        }
    }
    return gps;
}

// The overflow report of one lane's result.
void report(const LaneResult& r, int64_t offset, int32_t* kind, int64_t* where) {
    *kind = kNoOverflow;
    *where = INT64_MIN;
    if (r.first_state >= 0) {
        *kind = kStateOverflow;
        *where = r.first_state - offset;
    } else if (r.first_out >= 0) {
        *kind = kOutputOverflow;
        *where = r.first_out - offset;
    }
}

}  // namespace

namespace detail {

int staged_signals_per_unit(const Channel* ch, int64_t C) {
    const int W = simd_width();
    if (W == 0 || C > kStageCols) return 0;
    for (int64_t c = 0; c < C; ++c)
        if (!simd_exact(ch[c])) return 0;
    const int64_t groups = (C + W - 1) / W;
    return int(std::max<int64_t>(1, 4 / groups));
}

void filter_staged(const int64_t* x, int nsig, int64_t T, const Channel* ch, int64_t C, bool rev,
                   int32_t* const* stages, int32_t* kind, int64_t* where, bool* ok) {
    const int W = simd_width();
    const int64_t groups = (C + W - 1) / W;
    const int64_t offset = rev ? T : 0;
    const std::vector<GroupParams> gps = group_params(ch, C, W);
    Chain cs[4];
    LaneResult res[4][8];
    int n = 0;
    for (int j = 0; j < nsig; ++j) {
        // A signal with an out-of-range input sample is left to `filterbank`.
        const int64_t* xj = x + j * T;
        int64_t peak = 0;
        for (int64_t t = 0; t < T; ++t) peak = std::max(peak, iabs(xj[t]));
        ok[j] = true;
        for (int64_t c = 0; c < C; ++c)
            if (peak >= (int64_t(1) << (ch[c].B_in - 1))) ok[j] = false;
        if (!ok[j]) continue;
        for (int64_t g = 0; g < groups; ++g, ++n) {
            cs[n] = {xj, &gps[g], nullptr, int(std::min<int64_t>(W, C - g * W)), res[n],
                     stages[j], int(g * W)};
        }
    }
    if (n > 0) run_unit(W, n, cs, T, rev);
    n = 0;
    for (int j = 0; j < nsig; ++j) {
        if (!ok[j]) continue;
        for (int64_t g = 0; g < groups; ++g, ++n)
            for (int l = 0; l < cs[n].lanes; ++l) {
                const LaneResult& r = res[n][l];
                if (r.unsafe || r.wide) ok[j] = false;
                report(r, offset, kind + j * C + g * W + l, where + j * C + g * W + l);
            }
    }
}

Isa isa() {
#if XYLO_X86
    static const Isa value = [] {
        __builtin_cpu_init();
        const bool has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
        const bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        Isa best = has512 ? Isa::Avx512 : has2 ? Isa::Avx2 : Isa::Generic;
        if (const char* env = std::getenv("LEARNAFE_ISA")) {
            if (std::strcmp(env, "generic") == 0) best = Isa::Generic;
            if (std::strcmp(env, "avx2") == 0 && best == Isa::Avx512) best = Isa::Avx2;
        }
        return best;
    }();
    return value;
#else
    return Isa::Generic;
#endif
}

int simd_width() {
    static const int w = [] {
        int best = isa() == Isa::Avx512 ? 8 : isa() == Isa::Avx2 ? 4 : 0;
        if (const char* env = std::getenv("LEARNAFE_XYLO_SIMD")) {
            const int cap = std::atoi(env);
            if (cap < best) best = cap >= 8 ? 8 : cap >= 4 ? 4 : 0;
        }
        return best;
    }();
    return w;
}

}  // namespace detail

void filterbank(const int64_t* x, int64_t B, int64_t T, const Channel* ch, int64_t C,
                bool prepend_reversed, const BankOutput& out, int num_threads) {
    int64_t* const y = out.y;
    int32_t* const overflow_kind = out.overflow_kind;
    int64_t* const overflow_sample = out.overflow_sample;
    const int nt = resolve_threads(num_threads);
    const int64_t N = prepend_reversed ? 2 * T : T;
    const int64_t offset = prepend_reversed ? T : 0;
    // First out-of-range input sample per (signal, channel); B_in may differ
    // per channel.  A signal with any such sample goes to the int64 path.
    std::vector<int64_t> bad(B * C, -1);
    std::vector<char> clean(B, 1);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t b = 0; b < B; ++b) {
        int64_t peak = 0;  // max |x|; the reversed prefix holds the same values
        for (int64_t t = 0; t < T; ++t) peak = std::max(peak, iabs(x[b * T + t]));
        for (int64_t c = 0; c < C; ++c) {
            const int64_t lim = int64_t(1) << (ch[c].B_in - 1);
            if (peak < lim) continue;
            for (int64_t n = 0; n < N; ++n)
                if (iabs(sample_at(x + b * T, T, n, prepend_reversed)) >= lim) {
                    bad[b * C + c] = n;
                    clean[b] = 0;
                    break;
                }
        }
    }
    int W = simd_width();
    for (int64_t c = 0; c < C; ++c)
        if (!simd_exact(ch[c])) W = 0;

    // Scalar work list: every (signal, channel) not done by the vector path.
    std::vector<int64_t> scalar_items;
    if (W > 0) {
        // Chains: (clean signal, channel group); units of up to 4 chains are
        // interleaved per time step (more independent recursions in flight).
        const int64_t groups = (C + W - 1) / W;
        const std::vector<GroupParams> gps = group_params(ch, C, W);
        std::vector<int64_t> chain_b;
        std::vector<int64_t> chain_g;
        for (int64_t b = 0; b < B; ++b)
            if (clean[b])
                for (int64_t g = 0; g < groups; ++g) {
                    chain_b.push_back(b);
                    chain_g.push_back(g);
                }
        const int64_t n_chains = int64_t(chain_b.size());
        const bool stream = out.stream_large && B * C * T * int64_t(sizeof(int64_t)) >= kStreamBytes;
        std::vector<LaneResult> results(n_chains * 8);
        // Enough units to keep every thread busy, up to 4 chains per unit.
        int64_t per_unit = std::min<int64_t>(4, std::max<int64_t>(1, n_chains / nt));
        const int64_t n_units = (n_chains + per_unit - 1) / per_unit;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int64_t u = 0; u < n_units; ++u) {
            Chain cs[4];
            const int64_t k0 = u * per_unit, k1 = std::min(n_chains, k0 + per_unit);
            for (int64_t k = k0; k < k1; ++k) {
                const int64_t b = chain_b[k], g = chain_g[k];
                cs[k - k0] = {x + b * T, &gps[g], y + (b * C + g * W) * T,
                              int(std::min<int64_t>(W, C - g * W)), &results[k * 8]};
                cs[k - k0].stream = stream;
            }
            run_unit(W, int(k1 - k0), cs, T, prepend_reversed);
        }
        for (int64_t k = 0; k < n_chains; ++k) {
            const int64_t b = chain_b[k], g = chain_g[k];
            const int lanes = int(std::min<int64_t>(W, C - g * W));
            for (int l = 0; l < lanes; ++l) {
                const LaneResult& r = results[k * 8 + l];
                const int64_t idx = b * C + g * W + l;
                report(r, offset, overflow_kind + idx, overflow_sample + idx);
                if (r.unsafe) scalar_items.push_back(idx);
            }
        }
        for (int64_t b = 0; b < B; ++b)
            if (!clean[b])
                for (int64_t c = 0; c < C; ++c) scalar_items.push_back(b * C + c);
    } else {
        scalar_items.resize(B * C);
        for (int64_t k = 0; k < B * C; ++k) scalar_items[k] = k;
    }
    const int64_t n_items = int64_t(scalar_items.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t i = 0; i < n_items; ++i) {
        const int64_t k = scalar_items[i];
        const int64_t b = k / C, c = k % C;
        run_channel(x + b * T, T, ch[c], prepend_reversed, y + k * T, overflow_kind + k,
                    overflow_sample + k, bad[k]);
    }
}

}  // namespace xylo
}  // namespace learnafe
