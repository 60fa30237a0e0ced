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

}  // namespace xylo
}  // namespace learnafe
