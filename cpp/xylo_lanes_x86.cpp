// XyloAudio 3 filter bank: the vector lanes (one channel per double lane, W = 8
// on AVX-512, 4 on AVX2) and the block writers that turn the sample-major
// block buffer into the channel rows of y.  See xylo_lanes.h for the layout.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "xylo_lanes.h"

#if XYLO_X86
#include <immintrin.h>
#endif

namespace learnafe {
namespace xylo {
namespace detail {

namespace {

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

// The block's input samples n0 .. n0+len-1 of the processed sequence ((x
// reversed, x) or x) as doubles: the reversed part, then the forward part.
void fill_input(const int64_t* x, int64_t T, bool rev, int64_t n0, int64_t len, double* dst) {
    int64_t i = 0;
    if (rev)
        for (; i < len && n0 + i < T; ++i) dst[i] = double(x[T - 1 - (n0 + i)]);
    const int64_t base = rev ? n0 - T : n0;
    for (; i < len; ++i) dst[i] = double(x[base + i]);
}

#if XYLO_X86
// Vector unit over K chains (K <= 4) for one ISA.  State per chain:
// w1 = w_new(n-1) (the latched output v[n]), w2 = w_new(n-2), w3 = w_new(n-3)
// (= v[n-2]); y[n] = w1 - w3.  Only max |w1| is tracked per block: |y| <=
// |w1| + |w3| is bounded by the block's maximum plus the larger of it and the
// previous block's, and only when that bound reaches the output limit is the
// block's output scanned for the first overflowing sample.
// Chains of the same signal share the block's input, converted once.
#define XYLO_DEFINE_UNIT(NAME, TARGET, W, VEC, SET1, LOADU, STOREU, SUB, MUL, FMA, FLOOR, ABS,  \
                         MAX, WRITER, STAGER)                                                  \
    template <int K>                                                                           \
    TARGET void NAME(const Chain* ch, int64_t T, bool rev) {                                  \
        const int64_t N = rev ? 2 * T : T;                                                     \
        const int64_t offset = rev ? T : 0;                                                    \
        const VEC zero = SET1(0.0);                                                            \
        VEC w1[K], w2[K], w3[K], vmax[K];                                                      \
        for (int k = 0; k < K; ++k) w1[k] = w2[k] = w3[k] = zero;                              \
        alignas(64) double ybuf[K][kBlock][W];                                                 \
        alignas(64) double tmp[W], s1[K][W], s2[K][W], xin[K][kBlock], pmax[K][W];             \
        int src[K]; /* chains of the same signal share its converted input */                  \
        for (int k = 0; k < K; ++k) {                                                          \
            for (int l = 0; l < W; ++l) pmax[k][l] = 0.0;                                      \
            src[k] = k;                                                                        \
            for (int j = 0; j < k; ++j)                                                        \
                if (ch[j].x == ch[k].x) {                                                      \
                    src[k] = src[j];                                                           \
                    break;                                                                     \
                }                                                                              \
        }                                                                                      \
        for (int64_t n0 = 0; n0 < N; n0 += kBlock) {                                           \
            const int64_t len = std::min<int64_t>(kBlock, N - n0);                             \
            for (int k = 0; k < K; ++k) {                                                      \
                vmax[k] = zero;                                                                \
                STOREU(s1[k], w1[k]);                                                          \
                STOREU(s2[k], w2[k]);                                                          \
                if (src[k] == k) fill_input(ch[k].x, T, rev, n0, len, xin[k]);                 \
            }                                                                                  \
            for (int64_t i = 0; i < len; ++i) {                                                \
                for (int k = 0; k < K; ++k) {                                                  \
                    const GroupParams& g = *ch[k].gp;                                          \
                    const VEC s = SET1(xin[src[k]][i]);                                        \
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
                    if (tmp[l] >= kStageState) r.wide = true;                                  \
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
                if (c.stage)                                                                   \
                    STAGER(&ybuf[k][0][0], i0, len, c.stage + (n0 - offset) * kStageCols + c.stage_col); \
                else                                                                           \
                    WRITER(&ybuf[k][0][0], i0, len, c.lanes, c.y + (n0 - offset), T, c.stream); \
            }                                                                                  \
        }                                                                                      \
        _mm_sfence(); /* the streaming stores are visible before the unit returns */          \
    }

// Writes samples i.. of a block's W lanes one by one until the rows' next
// sample starts on a `bytes` boundary, so that the writers' vector stores are
// aligned: a misaligned 32- or 64-byte store splits across two cache lines, and
// the output rows are written at the memory's limit (a NumPy array is only
// 16-byte aligned; with T a multiple of W every row has the same alignment).
inline void aligned_head(const double* buf, int64_t& i, int64_t len, int W, int64_t* dst, int64_t T,
                         uintptr_t bytes) {
    if (T % W != 0) return;
    for (; i < len && (reinterpret_cast<uintptr_t>(dst + i) % bytes) != 0; ++i)
        for (int l = 0; l < W; ++l) dst[l * T + i] = int64_t(buf[i * W + l]);
}

// Block buffer [i][lane] (8 lanes) -> rows dst + lane * T, samples i0..len-1,
// with 8x8 in-register transposes: contiguous 64-byte row stores instead
// of one scalar conversion and store per value.
__attribute__((target("avx512f,avx512dq"))) inline void write_block_avx512(
    const double* buf, int64_t i0, int64_t len, int lanes, int64_t* dst, int64_t T, bool stream) {
    int64_t i = i0;
    if (lanes == 8) {
        aligned_head(buf, i, len, 8, dst, T, 64);
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
            if (stream && T % 8 == 0)  // aligned_head made every row's dst + i 64-byte aligned
                for (int m = 0; m < 8; ++m)
                    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + m * T + i),
                                        _mm512_cvttpd_epi64(t[m]));
            else
                for (int m = 0; m < 8; ++m)
                    _mm512_storeu_si512(dst + m * T + i, _mm512_cvttpd_epi64(t[m]));
        }
    }
    for (int l = 0; l < lanes; ++l)
        for (int64_t j = i; j < len; ++j) dst[l * T + j] = int64_t(buf[j * 8 + l]);
}

// The AVX2 writer: 4x4 in-register transposes and an exact double -> int64
// conversion without AVX-512's vcvttpd2qq: for an integer |v| < 2^51,
// bits(v + 1.5 2^52) - bits(1.5 2^52) = v.  Lanes whose values leave that range
// have left the vector path's exact range (|w| >= 2^36) and are redone by the
// int64 path, which overwrites their rows.
__attribute__((target("avx2,fma"))) inline void write_block_avx2(
    const double* buf, int64_t i0, int64_t len, int lanes, int64_t* dst, int64_t T, bool stream) {
    int64_t i = i0;
    if (lanes == 4) {
        const __m256d magic = _mm256_set1_pd(6755399441055744.0);  // 1.5 * 2^52
        const __m256i magic_bits = _mm256_castpd_si256(magic);
        aligned_head(buf, i, len, 4, dst, T, stream && T % 8 == 0 ? 64 : 32);
        for (; i + 4 <= len; i += 4) {
            const __m256d r0 = _mm256_loadu_pd(buf + (i + 0) * 4), r1 = _mm256_loadu_pd(buf + (i + 1) * 4);
            const __m256d r2 = _mm256_loadu_pd(buf + (i + 2) * 4), r3 = _mm256_loadu_pd(buf + (i + 3) * 4);
            const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
            const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
            const __m256d c[4] = {_mm256_permute2f128_pd(t0, t2, 0x20), _mm256_permute2f128_pd(t1, t3, 0x20),
                                  _mm256_permute2f128_pd(t0, t2, 0x31), _mm256_permute2f128_pd(t1, t3, 0x31)};
            for (int m = 0; m < 4; ++m) {  // c[m]: lane m for samples i..i+3
                const __m256i v =
                    _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(c[m], magic)), magic_bits);
                __m256i* p = reinterpret_cast<__m256i*>(dst + m * T + i);
                if (stream && T % 4 == 0)  // aligned_head made dst + i 32-byte aligned
                    _mm256_stream_si256(p, v);
                else
                    _mm256_storeu_si256(p, v);
            }
        }
    }
    for (int l = 0; l < lanes; ++l)
        for (int64_t j = i; j < len; ++j) dst[l * T + j] = int64_t(buf[j * 4 + l]);
}

// Block buffer [i][lane] -> |y| as int32 in stage rows i (kStageCols apart),
// samples i0..len-1: one abs, one exact conversion (|y| < 2^31 while the lane
// is not wide) and one store per sample, no transpose (the spike generator
// reads the stage sample-major).
__attribute__((target("avx512f,avx512dq"))) inline void stage_block_avx512(
    const double* buf, int64_t i0, int64_t len, int32_t* dst) {
    for (int64_t i = i0; i < len; ++i)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i * kStageCols),
                            _mm512_cvtpd_epi32(_mm512_abs_pd(_mm512_loadu_pd(buf + i * 8))));
}

__attribute__((target("avx2,fma"))) inline void stage_block_avx2(const double* buf, int64_t i0,
                                                                int64_t len, int32_t* dst) {
    const __m256d sign = _mm256_set1_pd(-0.0);
    for (int64_t i = i0; i < len; ++i)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i * kStageCols),
                         _mm256_cvtpd_epi32(_mm256_andnot_pd(sign, _mm256_loadu_pd(buf + i * 4))));
}

static inline __attribute__((target("avx2,fma"))) __m256d xylo_abs256(__m256d v) {
    return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v);
}
#define XYLO_FLOOR512(v) _mm512_roundscale_pd((v), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
XYLO_DEFINE_UNIT(unit_avx512, __attribute__((target("avx512f,avx512dq,avx2,fma"))), 8, __m512d,
                 _mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_sub_pd, _mm512_mul_pd,
                 _mm512_fmadd_pd, XYLO_FLOOR512, _mm512_abs_pd, _mm512_max_pd, write_block_avx512,
                 stage_block_avx512)
XYLO_DEFINE_UNIT(unit_avx2, __attribute__((target("avx2,fma"))), 4, __m256d, _mm256_set1_pd,
                 _mm256_loadu_pd, _mm256_storeu_pd, _mm256_sub_pd, _mm256_mul_pd,
                 _mm256_fmadd_pd, _mm256_floor_pd, xylo_abs256, _mm256_max_pd,
                 write_block_avx2, stage_block_avx2)
#endif

template <int K>
void run_unit_k(int W, const Chain* ch, int64_t T, bool rev) {
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

void run_unit(int W, int K, const Chain* ch, int64_t T, bool rev) {
    switch (K) {
        case 1: run_unit_k<1>(W, ch, T, rev); break;
        case 2: run_unit_k<2>(W, ch, T, rev); break;
        case 3: run_unit_k<3>(W, ch, T, rev); break;
        case 4: run_unit_k<4>(W, ch, T, rev); break;
        default: break;
    }
}

}  // namespace detail
}  // namespace xylo
}  // namespace learnafe
