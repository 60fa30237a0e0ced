#include "xylo_filterbank.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "parallel.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define XYLO_X86 1
#else
#define XYLO_X86 0
#endif

namespace learnafe {
namespace xylo {

namespace {

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
};

// One independent recursion: one signal through one group of W channels.
struct Chain {
    const int64_t* x;       // the signal [T]
    const GroupParams* gp;  // the group's lane parameters
    int64_t* y;             // output row of the group's first channel ([lane][T])
    int lanes;              // valid lanes (channels) in the group
    LaneResult* res;        // [W]
};

// Replays one lane of a block in scalar double arithmetic (the same operations
// as the vector code) from the block's start state to find the first sample
// whose latched AR output reaches the limit.  Only called when the block's
// maximum says there is one.
int64_t first_state_in_block(const Chain& c, int l, int64_t T, bool rev, int64_t n0, int64_t len,
                             double w1, double w2) {
    const GroupParams& g = *c.gp;
    for (int64_t i = 0; i < len; ++i) {
        if (std::abs(w1) >= g.wlim[l]) return n0 + i;
        const double s = double(sample_at(c.x, T, n0 + i, rev));
        const double w = std::floor(std::fma(g.na1[l], w1, std::fma(g.na2[l], w2, s * g.xs[l])));
        w2 = w1;
        w1 = w;
    }
    return -1;
}

#if XYLO_X86
// Vector unit over K chains (K <= 4) for one ISA.  State per chain:
// w1 = w_new(n-1) (the latched output v[n]), w2 = w_new(n-2), w3 = w_new(n-3)
// (= v[n-2]); y[n] = w1 - w3.  Only max |w1| is tracked per block: |y| <=
// |w1| + |w3| is bounded by the block's maximum plus the larger of it and the
// previous block's, and only when that bound reaches the output limit is the
// block's output scanned for the first overflowing sample.
#define XYLO_DEFINE_UNIT(NAME, TARGET, W, VEC, SET1, LOADU, STOREU, SUB, MUL, FMA, FLOOR, ABS,  \
                         MAX, WRITER)                                                          \
    template <int K>                                                                           \
    TARGET void NAME(const Chain* ch, int64_t T, bool rev) {                                  \
        const int64_t N = rev ? 2 * T : T;                                                     \
        const int64_t offset = rev ? T : 0;                                                    \
        const VEC zero = SET1(0.0);                                                            \
        VEC w1[K], w2[K], w3[K], vmax[K];                                                      \
        for (int k = 0; k < K; ++k) w1[k] = w2[k] = w3[k] = zero;                              \
        alignas(64) double ybuf[K][kBlock][W];                                                 \
        alignas(64) double tmp[W], s1[K][W], s2[K][W], xin[K][kBlock], pmax[K][W];             \
        for (int k = 0; k < K; ++k)                                                            \
            for (int l = 0; l < W; ++l) pmax[k][l] = 0.0;                                      \
        for (int64_t n0 = 0; n0 < N; n0 += kBlock) {                                           \
            const int64_t len = std::min<int64_t>(kBlock, N - n0);                             \
            for (int k = 0; k < K; ++k) {                                                      \
                vmax[k] = zero;                                                                \
                STOREU(s1[k], w1[k]);                                                          \
                STOREU(s2[k], w2[k]);                                                          \
                for (int64_t i = 0; i < len; ++i)                                              \
                    xin[k][i] = double(sample_at(ch[k].x, T, n0 + i, rev));                    \
            }                                                                                  \
            for (int64_t i = 0; i < len; ++i) {                                                \
                for (int k = 0; k < K; ++k) {                                                  \
                    const GroupParams& g = *ch[k].gp;                                          \
                    const VEC s = SET1(xin[k][i]);                                             \
                    const VEC out = SUB(w1[k], w3[k]);                                         \
                    STOREU(ybuf[k][i], out);                                                   \
                    vmax[k] = MAX(vmax[k], ABS(w1[k]));                                        \
                    const VEC t = FMA(LOADU(g.na2), w2[k], MUL(s, LOADU(g.xs)));               \
                    const VEC w = FLOOR(FMA(LOADU(g.na1), w1[k], t));                          \
                    w3[k] = w2[k];                                                             \
                    w2[k] = w1[k];                                                             \
                    w1[k] = w;                                                                 \
                }                                                                              \
            }                                                                                  \
            for (int k = 0; k < K; ++k) {                                                      \
                const Chain& c = ch[k];                                                        \
                STOREU(tmp, vmax[k]);                                                          \
                for (int l = 0; l < c.lanes; ++l) {                                            \
                    LaneResult& r = c.res[l];                                                  \
                    if (tmp[l] >= double(kSafeState)) r.unsafe = true;                         \
                    if (r.first_state < 0 && tmp[l] >= c.gp->wlim[l])                          \
                        r.first_state = first_state_in_block(c, l, T, rev, n0, len, s1[k][l],  \
                                                             s2[k][l]);                        \
                }                                                                              \
                for (int l = 0; l < c.lanes; ++l) {                                            \
                    LaneResult& r = c.res[l];                                                  \
                    const double bound = tmp[l] + std::max(tmp[l], pmax[k][l]);                \
                    pmax[k][l] = tmp[l];                                                       \
                    if (r.first_out < 0 && bound >= c.gp->ylim[l])                             \
                        for (int64_t i = 0; i < len; ++i)                                      \
                            if (std::abs(ybuf[k][i][l]) >= c.gp->ylim[l]) {                    \
                                r.first_out = n0 + i;                                          \
                                break;                                                         \
                            }                                                                  \
                }                                                                              \
                const int64_t i0 = std::max<int64_t>(0, offset - n0);                          \
                WRITER(&ybuf[k][0][0], i0, len, c.lanes, c.y + (n0 - offset), T);              \
            }                                                                                  \
        }                                                                                      \
    }

// Block buffer [i][lane] (W lanes) -> rows dst + lane * T, samples i0..len-1.
template <int W>
inline void write_block_scalar(const double* buf, int64_t i0, int64_t len, int lanes,
                               int64_t* dst, int64_t T) {
    for (int l = 0; l < lanes; ++l)
        for (int64_t i = i0; i < len; ++i) dst[l * T + i] = int64_t(buf[i * W + l]);
}

// Same with 8x8 in-register transposes: contiguous 64-byte row stores instead
// of one scalar conversion and store per value.
__attribute__((target("avx512f,avx512dq"))) inline void write_block_avx512(
    const double* buf, int64_t i0, int64_t len, int lanes, int64_t* dst, int64_t T) {
    int64_t i = i0;
    if (lanes == 8) {
        for (; i + 8 <= len; i += 8) {
            __m512d r[8], t[8];
            for (int j = 0; j < 8; ++j) r[j] = _mm512_loadu_pd(buf + (i + j) * 8);
            for (int j = 0; j < 8; j += 2) {
                t[j] = _mm512_unpacklo_pd(r[j], r[j + 1]);
                t[j + 1] = _mm512_unpackhi_pd(r[j], r[j + 1]);
            }
            for (int j = 0; j < 8; j += 4)
                for (int h = 0; h < 2; ++h) {
                    r[j + h] = _mm512_shuffle_f64x2(t[j + h], t[j + h + 2], 0x88);
                    r[j + h + 2] = _mm512_shuffle_f64x2(t[j + h], t[j + h + 2], 0xDD);
                }
            for (int h = 0; h < 4; ++h) {
                t[h] = _mm512_shuffle_f64x2(r[h], r[h + 4], 0x88);
                t[h + 4] = _mm512_shuffle_f64x2(r[h], r[h + 4], 0xDD);
            }
            // t[m] now holds lane m for samples i..i+7.
            for (int m = 0; m < 8; ++m)
                _mm512_storeu_si512(dst + m * T + i, _mm512_cvttpd_epi64(t[m]));
        }
    }
    for (int l = 0; l < lanes; ++l)
        for (int64_t j = i; j < len; ++j) dst[l * T + j] = int64_t(buf[j * 8 + l]);
}

static inline __attribute__((target("avx2,fma"))) __m256d xylo_abs256(__m256d v) {
    return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v);
}
#define XYLO_FLOOR512(v) _mm512_roundscale_pd((v), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
XYLO_DEFINE_UNIT(unit_avx512, __attribute__((target("avx512f,avx512dq,avx2,fma"))), 8, __m512d,
                 _mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_sub_pd, _mm512_mul_pd,
                 _mm512_fmadd_pd, XYLO_FLOOR512, _mm512_abs_pd, _mm512_max_pd, write_block_avx512)
XYLO_DEFINE_UNIT(unit_avx2, __attribute__((target("avx2,fma"))), 4, __m256d, _mm256_set1_pd,
                 _mm256_loadu_pd, _mm256_storeu_pd, _mm256_sub_pd, _mm256_mul_pd,
                 _mm256_fmadd_pd, _mm256_floor_pd, xylo_abs256, _mm256_max_pd,
                 write_block_scalar<4>)
#endif

// Vector width of the best available path (0: none, use int64 scalars).
// LEARNAFE_XYLO_SIMD=0/4/8 caps it (for testing every path on one machine).
int simd_width() {
#if XYLO_X86
    static const int w = [] {
        int best = (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) ? 8
                   : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))      ? 4
                                                                                            : 0;
        if (const char* env = std::getenv("LEARNAFE_XYLO_SIMD")) {
            const int cap = std::atoi(env);
            if (cap < best) best = cap >= 8 ? 8 : cap >= 4 ? 4 : 0;
        }
        return best;
    }();
    return w;
#else
    return 0;
#endif
}

template <int K>
void run_unit(int W, const Chain* ch, int64_t T, bool rev) {
#if XYLO_X86
    if (W == 8)
        unit_avx512<K>(ch, T, rev);
    else
        unit_avx2<K>(ch, T, rev);
#else
    (void)W, (void)ch, (void)T, (void)rev;
#endif
}

}  // namespace

void filterbank(const int64_t* x, int64_t B, int64_t T, const Channel* ch, int64_t C,
                bool prepend_reversed, int64_t* y, int32_t* overflow_kind,
                int64_t* overflow_sample, int num_threads) {
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
        std::vector<int64_t> chain_b;
        std::vector<int64_t> chain_g;
        for (int64_t b = 0; b < B; ++b)
            if (clean[b])
                for (int64_t g = 0; g < groups; ++g) {
                    chain_b.push_back(b);
                    chain_g.push_back(g);
                }
        const int64_t n_chains = int64_t(chain_b.size());
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
            }
            switch (k1 - k0) {
                case 1: run_unit<1>(W, cs, T, prepend_reversed); break;
                case 2: run_unit<2>(W, cs, T, prepend_reversed); break;
                case 3: run_unit<3>(W, cs, T, prepend_reversed); break;
                case 4: run_unit<4>(W, cs, T, prepend_reversed); break;
                default: break;
            }
        }
        for (int64_t k = 0; k < n_chains; ++k) {
            const int64_t b = chain_b[k], g = chain_g[k];
            const int lanes = int(std::min<int64_t>(W, C - g * W));
            for (int l = 0; l < lanes; ++l) {
                const LaneResult& r = results[k * 8 + l];
                const int64_t idx = b * C + g * W + l;
                overflow_kind[idx] = kNoOverflow;
                overflow_sample[idx] = INT64_MIN;
                if (r.first_state >= 0) {
                    overflow_kind[idx] = kStateOverflow;
                    overflow_sample[idx] = r.first_state - offset;
                } else if (r.first_out >= 0) {
                    overflow_kind[idx] = kOutputOverflow;
                    overflow_sample[idx] = r.first_out - offset;
                }
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

namespace {

// ------------------------------------------------- fused spike features ---
//
// The spike generator of `spike_raster` for one signal, with the C <= 16
// channels held in 16 int64 lanes (padded lanes have y = 0 and parameters 0,
// so their threshold is 0 and never raises the joint maximum, which is >= 0).
// Every per-channel operation is written over the 16 lanes without branches,
// so the compiler vectorises it (AVX-512: variable arithmetic shifts, 64-bit
// multiplies and compares on two registers).  Samples are consumed in blocks
// of kSpikeBlock: the block's rows of y [C, T] are copied into a small
// sample-major buffer first (in L1), forwards or backwards in time.

constexpr int kLanes = 16;
constexpr int64_t kSpikeBlock = 64;

// |y[c, t0 + i]| for i < n into the sample-major block buffer (both spike paths).
inline void load_abs_block(const int64_t* y, int64_t C, int64_t T, int64_t t0, int64_t n,
                           int64_t (*buf)[kLanes]) {
    for (int64_t c = 0; c < C; ++c) {
        const int64_t* row = y + c * T + t0;
        for (int64_t i = 0; i < n; ++i) buf[i][c] = row[i] < 0 ? -row[i] : row[i];
    }
}

struct SpikeLanes {
    alignas(64) int64_t lps[kLanes], eps[kLanes], mul1[kLanes], mul2[kLanes], fixed[kLanes];
    alignas(64) int64_t use_joint[kLanes], use_own[kLanes], use_fixed[kLanes];  // 0 / -1 masks
    alignas(64) int64_t high[kLanes], iaf[kLanes], cnt[kLanes];
};

// One sample: r[] = |y| of the 16 lanes.  COUNT: the sample lies in the
// returned timeline (its spikes are counted).
template <bool COUNT>
inline __attribute__((always_inline)) void spike_step(SpikeLanes& s, const int64_t* r) {
    alignas(64) int64_t thr[kLanes];
    int64_t joint = 0;
    for (int c = 0; c < kLanes; ++c) {
        // power estimate before this sample; then the update
        const int64_t low = s.high[c] >> s.lps[c];
        s.high[c] = s.high[c] - low + r[c];
        const int64_t m = low < s.eps[c] ? s.eps[c] : low;
        thr[c] = m * s.mul1[c] - m * s.mul2[c];
        joint = thr[c] > joint ? thr[c] : joint;
    }
    for (int c = 0; c < kLanes; ++c) {
        const int64_t th = (joint & s.use_joint[c]) | (thr[c] & s.use_own[c]) | (s.fixed[c] & s.use_fixed[c]);
        const int64_t v = s.iaf[c] + r[c];
        const int64_t spike = v >= th ? -1 : 0;  // all ones when it fires
        s.iaf[c] = v - (th & spike);
        if (COUNT) s.cnt[c] -= spike;
    }
}

// The generator over one signal's filter output y [C, T] (rows of length T).
// prepend_reversed: first over the time-reversed signal (no counts), then
// over the signal.  counts [F, C].
template <int Dummy>
inline __attribute__((always_inline)) void spike_signal_impl(const int64_t* y, int64_t C, int64_t T,
                                                             const SpikeConfig& cfg, bool rev,
                                                             int64_t* counts) {
    SpikeLanes s;
    for (int c = 0; c < kLanes; ++c) {
        const bool on = c < C;
        s.lps[c] = on ? cfg.low_pass_shift[c] : 0;
        s.eps[c] = on ? cfg.eps[c] : 0;
        s.mul1[c] = on ? (int64_t(1) << cfg.rate_shift1[c]) : 0;
        s.mul2[c] = on ? (int64_t(1) << cfg.rate_shift2[c]) : 0;
        s.fixed[c] = on ? cfg.fixed_threshold[c] : 0;
        const bool adaptive = on && cfg.adaptive[c];
        s.use_joint[c] = adaptive && cfg.joint_normalization ? -1 : 0;
        s.use_own[c] = adaptive && !cfg.joint_normalization ? -1 : 0;
        s.use_fixed[c] = on && !cfg.adaptive[c] ? -1 : 0;
        s.high[c] = s.iaf[c] = s.cnt[c] = 0;
    }
    alignas(64) int64_t buf[kSpikeBlock][kLanes];
    for (int64_t i = 0; i < kSpikeBlock; ++i)
        for (int c = 0; c < kLanes; ++c) buf[i][c] = 0;
    auto load = [&](int64_t t0, int64_t n) { load_abs_block(y, C, T, t0, n, buf); };
    if (rev) {
        for (int64_t t1 = T; t1 > 0; t1 -= kSpikeBlock) {
            const int64_t t0 = std::max<int64_t>(0, t1 - kSpikeBlock);
            load(t0, t1 - t0);
            for (int64_t i = t1 - t0 - 1; i >= 0; --i) spike_step<false>(s, buf[i]);
        }
    }
    const int64_t R = cfg.raster_factor;
    const int64_t F = raster_frames(T, R);
    int64_t f = 0, frame_end = std::min(R, T);
    for (int64_t t0 = 0; t0 < T; t0 += kSpikeBlock) {
        const int64_t n = std::min(kSpikeBlock, T - t0);
        load(t0, n);
        for (int64_t i = 0; i < n; ++i) {
            spike_step<true>(s, buf[i]);
            if (t0 + i + 1 == frame_end) {
                int64_t* out = counts + f * C;
                for (int64_t c = 0; c < C; ++c) out[c] = std::min(s.cnt[c], cfg.max_spikes);
                for (int c = 0; c < kLanes; ++c) s.cnt[c] = 0;
                ++f;
                frame_end = std::min(frame_end + R, T);
            }
        }
    }
    (void)F;
}

void spike_signal_generic(const int64_t* y, int64_t C, int64_t T, const SpikeConfig& cfg, bool rev,
                          int64_t* counts) {
    spike_signal_impl<0>(y, C, T, cfg, rev, counts);
}
#if XYLO_X86
#define XYLO_T512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
struct SpikeVec {
    __m512i vlps[2], veps[2], vb1[2], vb2[2], vfix[2], vuj[2], vuo[2], vuf[2], high[2], iaf[2], cnt[2];
};

template <bool COUNT>
XYLO_T512 inline __attribute__((always_inline)) void spike_step512(SpikeVec& q, const int64_t* r_) {
    __m512i r[2], thr[2];
    for (int h = 0; h < 2; ++h) {
        r[h] = _mm512_load_si512(r_ + 8 * h);
        const __m512i low = _mm512_srav_epi64(q.high[h], q.vlps[h]);
        q.high[h] = _mm512_add_epi64(_mm512_sub_epi64(q.high[h], low), r[h]);
        const __m512i m = _mm512_max_epi64(low, q.veps[h]);
        thr[h] = _mm512_sub_epi64(_mm512_sllv_epi64(m, q.vb1[h]), _mm512_sllv_epi64(m, q.vb2[h]));
    }
    // joint maximum over the lanes (all >= 0), in every lane
    __m512i jm = _mm512_max_epi64(thr[0], thr[1]);
    jm = _mm512_max_epi64(jm, _mm512_shuffle_i64x2(jm, jm, 0x4E));
    jm = _mm512_max_epi64(jm, _mm512_shuffle_i64x2(jm, jm, 0xB1));
    jm = _mm512_max_epi64(jm, _mm512_shuffle_epi32(jm, _MM_PERM_BADC));
    for (int h = 0; h < 2; ++h) {
        const __m512i th = _mm512_or_si512(
            _mm512_or_si512(_mm512_and_si512(jm, q.vuj[h]), _mm512_and_si512(thr[h], q.vuo[h])),
            _mm512_and_si512(q.vfix[h], q.vuf[h]));
        const __m512i v = _mm512_add_epi64(q.iaf[h], r[h]);
        const __mmask8 k = _mm512_cmpge_epi64_mask(v, th);
        q.iaf[h] = _mm512_mask_sub_epi64(v, k, v, th);
        if (COUNT) q.cnt[h] = _mm512_mask_add_epi64(q.cnt[h], k, q.cnt[h], _mm512_set1_epi64(1));
    }
}

// The same generator in AVX-512 intrinsics (the compiler does not vectorise
// the lane loops by itself): 16 lanes as two registers of 8 int64; the
// multiplications by 2^b1 and 2^b2 are shifts (equal in two's complement).
XYLO_T512 void spike_signal_avx512(
    const int64_t* y, int64_t C, int64_t T, const SpikeConfig& cfg, bool rev, int64_t* counts) {
    alignas(64) int64_t lps[kLanes], eps[kLanes], b1[kLanes], b2[kLanes], fixed[kLanes], uj[kLanes],
        uo[kLanes], uf[kLanes];
    for (int c = 0; c < kLanes; ++c) {
        const bool on = c < C;
        lps[c] = on ? cfg.low_pass_shift[c] : 0;
        eps[c] = on ? cfg.eps[c] : 0;
        b1[c] = on ? cfg.rate_shift1[c] : 64;  // shift by >= 64 gives 0: padded lanes
        b2[c] = on ? cfg.rate_shift2[c] : 64;
        fixed[c] = on ? cfg.fixed_threshold[c] : 0;
        const bool adaptive = on && cfg.adaptive[c];
        uj[c] = adaptive && cfg.joint_normalization ? -1 : 0;
        uo[c] = adaptive && !cfg.joint_normalization ? -1 : 0;
        uf[c] = on && !cfg.adaptive[c] ? -1 : 0;
    }
    SpikeVec q;
    for (int h = 0; h < 2; ++h) {
        q.vlps[h] = _mm512_load_si512(lps + 8 * h);
        q.veps[h] = _mm512_load_si512(eps + 8 * h);
        q.vb1[h] = _mm512_load_si512(b1 + 8 * h);
        q.vb2[h] = _mm512_load_si512(b2 + 8 * h);
        q.vfix[h] = _mm512_load_si512(fixed + 8 * h);
        q.vuj[h] = _mm512_load_si512(uj + 8 * h);
        q.vuo[h] = _mm512_load_si512(uo + 8 * h);
        q.vuf[h] = _mm512_load_si512(uf + 8 * h);
        q.high[h] = q.iaf[h] = q.cnt[h] = _mm512_setzero_si512();
    }
    alignas(64) int64_t buf[kSpikeBlock][kLanes];
    for (int64_t i = 0; i < kSpikeBlock; ++i)
        for (int c = 0; c < kLanes; ++c) buf[i][c] = 0;
    auto load = [&](int64_t t0, int64_t n) { load_abs_block(y, C, T, t0, n, buf); };
    if (rev) {
        for (int64_t t1 = T; t1 > 0; t1 -= kSpikeBlock) {
            const int64_t t0 = std::max<int64_t>(0, t1 - kSpikeBlock);
            load(t0, t1 - t0);
            for (int64_t i = t1 - t0 - 1; i >= 0; --i) spike_step512<false>(q, buf[i]);
        }
    }
    const int64_t R = cfg.raster_factor;
    int64_t f = 0, frame_end = std::min(R, T);
    const __m512i vmax = _mm512_set1_epi64(cfg.max_spikes);
    for (int64_t t0 = 0; t0 < T; t0 += kSpikeBlock) {
        const int64_t n = std::min(kSpikeBlock, T - t0);
        load(t0, n);
        for (int64_t i = 0; i < n; ++i) {
            spike_step512<true>(q, buf[i]);
            if (t0 + i + 1 == frame_end) {
                alignas(64) int64_t cl[kLanes];
                _mm512_store_si512(cl, _mm512_min_epi64(q.cnt[0], vmax));
                _mm512_store_si512(cl + 8, _mm512_min_epi64(q.cnt[1], vmax));
                int64_t* out = counts + f * C;
                for (int64_t c = 0; c < C; ++c) out[c] = cl[c];
                q.cnt[0] = q.cnt[1] = _mm512_setzero_si512();
                ++f;
                frame_end = std::min(frame_end + R, T);
            }
        }
    }
}
#endif

void spike_signal(const int64_t* y, int64_t C, int64_t T, const SpikeConfig& cfg, bool rev,
                  int64_t* counts) {
#if XYLO_X86
    static const int isa = [] {
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
            return 2;
        return 0;
    }();
    if (isa == 2) return spike_signal_avx512(y, C, T, cfg, rev, counts);
#endif
    spike_signal_generic(y, C, T, cfg, rev, counts);
}

}  // namespace

void spike_features(const int64_t* x, int64_t B, int64_t T, const Channel* ch, int64_t C,
                    const SpikeConfig& cfg, bool prepend_reversed, int64_t* counts,
                    int32_t* overflow_kind, int64_t* overflow_sample, int num_threads) {
    const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(resolve_threads(num_threads), B)));
    const int64_t F = raster_frames(T, cfg.raster_factor);
#pragma omp parallel num_threads(nt)
    {
        // One signal's filter output at a time per thread ([C, T]; reused).
        std::vector<int64_t> y(static_cast<size_t>(C * T));
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < B; ++b) {
            filterbank(x + b * T, 1, T, ch, C, prepend_reversed, y.data(), overflow_kind + b * C,
                       overflow_sample + b * C, 1);
            if (C <= kLanes) {
                spike_signal(y.data(), C, T, cfg, prepend_reversed, counts + b * F * C);
            } else {
                spike_raster(y.data(), 1, C, T, cfg, prepend_reversed, counts + b * F * C, 1);
            }
        }
    }
}

}  // namespace xylo
}  // namespace learnafe
