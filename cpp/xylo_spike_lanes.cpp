// XyloAudio 3 spike generator over 16 int64 lanes (the divisive-normalisation
// generator of `spike_raster` for one signal of C <= 16 channels): the generic
// lane code, the AVX2 and AVX-512 forms, and the two sample sources (the int64
// rows y [C, T] of the filter output, or the int32 stage of the staged bank).
#include <algorithm>
#include <climits>

#include "xylo_lanes.h"

#if XYLO_X86
#include <immintrin.h>
#endif

namespace learnafe {
namespace xylo {
namespace detail {

namespace {

// The spike generator of `spike_raster` for one signal, with the C <= 16
// channels held in 16 int64 lanes (padded lanes have y = 0 and parameters 0,
// so their threshold is 0 and never raises the joint maximum, which is >= 0).
// Every per-channel operation is written over the 16 lanes without branches,
// so the compiler vectorises it (AVX-512: variable arithmetic shifts, 64-bit
// multiplies and compares on two registers).  Samples are consumed in blocks
// of kSpikeBlock: the block's rows of y [C, T] are copied into a small
// sample-major buffer first (in L1), forwards or backwards in time.

constexpr int kLanes = kSpikeLanes;
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
// The per-lane settings of the vector spike generators, 16 lanes (channels >= C
// padded so that they never spike): low-pass shift, eps, the two rate shifts,
// the fixed threshold, and the masks (-1 / 0) of joint-adaptive, own-adaptive and
// fixed-threshold lanes.
struct LaneSettings {
    alignas(64) int64_t lps[kLanes], eps[kLanes], b1[kLanes], b2[kLanes], fixed[kLanes], uj[kLanes],
        uo[kLanes], uf[kLanes];
};

inline LaneSettings lane_settings(const SpikeConfig& cfg, int64_t C) {
    LaneSettings ls;
    for (int c = 0; c < kLanes; ++c) {
        const bool on = c < C;
        ls.lps[c] = on ? cfg.low_pass_shift[c] : 0;
        ls.eps[c] = on ? cfg.eps[c] : 0;
        ls.b1[c] = on ? cfg.rate_shift1[c] : 64;  // shift by >= 64 gives 0: padded lanes
        ls.b2[c] = on ? cfg.rate_shift2[c] : 64;
        ls.fixed[c] = on ? cfg.fixed_threshold[c] : 0;
        const bool adaptive = on && cfg.adaptive[c];
        ls.uj[c] = adaptive && cfg.joint_normalization ? -1 : 0;
        ls.uo[c] = adaptive && !cfg.joint_normalization ? -1 : 0;
        ls.uf[c] = on && !cfg.adaptive[c] ? -1 : 0;
    }
    return ls;
}

// load_abs_block with AVX2: 4 x 4 blocks of (channel, sample) transposed in
// registers (|v| as (v ^ s) - s with s the sign mask), instead of one scalar
// store per value; channels and samples beyond whole blocks of 4 one by one.
__attribute__((target("avx2"))) void load_abs_block256(const int64_t* y, int64_t C, int64_t T, int64_t t0, int64_t n,
                                 int64_t (*buf)[kLanes]) {
    const __m256i zero = _mm256_setzero_si256();
    const int64_t C4 = C - C % 4, n4 = n - n % 4;
    for (int64_t c = 0; c < C4; c += 4) {
        const int64_t* row = y + c * T + t0;
        for (int64_t i = 0; i < n4; i += 4) {
            __m256i r[4];
            for (int j = 0; j < 4; ++j) {
                const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + j * T + i));
                const __m256i sign = _mm256_cmpgt_epi64(zero, v);
                r[j] = _mm256_sub_epi64(_mm256_xor_si256(v, sign), sign);
            }
            const __m256i t0v = _mm256_unpacklo_epi64(r[0], r[1]), t1v = _mm256_unpackhi_epi64(r[0], r[1]);
            const __m256i t2v = _mm256_unpacklo_epi64(r[2], r[3]), t3v = _mm256_unpackhi_epi64(r[2], r[3]);
            const __m256i o[4] = {_mm256_permute2x128_si256(t0v, t2v, 0x20), _mm256_permute2x128_si256(t1v, t3v, 0x20),
                                  _mm256_permute2x128_si256(t0v, t2v, 0x31), _mm256_permute2x128_si256(t1v, t3v, 0x31)};
            for (int m = 0; m < 4; ++m)  // o[m]: sample i + m of channels c..c+3
                _mm256_store_si256(reinterpret_cast<__m256i*>(&buf[i + m][c]), o[m]);
        }
        for (int64_t j = 0; j < 4; ++j)
            for (int64_t i = n4; i < n; ++i) buf[i][c + j] = row[j * T + i] < 0 ? -row[j * T + i] : row[j * T + i];
    }
    for (int64_t c = C4; c < C; ++c) {
        const int64_t* row = y + c * T + t0;
        for (int64_t i = 0; i < n; ++i) buf[i][c] = row[i] < 0 ? -row[i] : row[i];
    }
}

// Where the vector generators read their samples: rows(t0, n) points at n
// sample-major rows of kLanes values |y[c, t0 + i]|.  RowsSource transposes a
// block of the filter output's rows y [C, T] into a buffer; StageSource reads
// the int32 stage the staged filter bank wrote (kStageCols == kLanes).
struct RowsSource {
    static constexpr bool kBelow31 = false;
    const int64_t* y;
    int64_t C, T;
    alignas(64) int64_t buf[kSpikeBlock][kLanes];
    RowsSource(const int64_t* y_, int64_t C_, int64_t T_) : y(y_), C(C_), T(T_) {
        for (int64_t i = 0; i < kSpikeBlock; ++i)
            for (int c = 0; c < kLanes; ++c) buf[i][c] = 0;
    }
    const int64_t* rows(int64_t t0, int64_t n) {
        load_abs_block256(y, C, T, t0, n, buf);
        return &buf[0][0];
    }
};

struct StageSource {
    static constexpr bool kBelow31 = true;  // |y| < 2^31 (the staged path's exactness bound)
    const int32_t* stage;
    const int32_t* rows(int64_t t0, int64_t) const { return stage + t0 * kStageCols; }
};

// How a lane's threshold is formed: kSelect per lane (joint, own or fixed);
// kJoint the joint maximum of the lanes' thresholds in every lane (every
// channel adaptive and joint); kUniform the same maximum computed once from
// the lanes' largest power estimate M, as (max(M, eps) << b1) - (max(M, eps) << b2).
enum SpikeMode { kSelect = 0, kJoint = 1, kUniform = 2 };

// Whether kUniform equals kJoint: every channel has the same eps, b1, b2 with
// b1 >= b2 (the threshold m (2^b1 - 2^b2) is then non-decreasing in m, so its
// maximum over the lanes is its value at the largest m = max(low, eps)), and no
// shift can wrap: with |y| < 2^31 and low-pass shifts l <= 31 the power estimate
// stays below 2^l 2^31 (high' = high - (high >> l) + r), so low < 2^31, and with
// eps < 2^31 and b1 <= 30 every shifted value is below 2^61.
inline bool uniform_threshold(const SpikeConfig& cfg, int64_t C) {
    for (int64_t c = 0; c < C; ++c)
        if (cfg.eps[c] != cfg.eps[0] || cfg.rate_shift1[c] != cfg.rate_shift1[0] ||
            cfg.rate_shift2[c] != cfg.rate_shift2[0] || cfg.low_pass_shift[c] < 0 || cfg.low_pass_shift[c] > 31)
            return false;
    return C > 0 && cfg.eps[0] >= 0 && cfg.eps[0] < (int64_t(1) << 31) && cfg.rate_shift2[0] >= 0 &&
           cfg.rate_shift1[0] >= cfg.rate_shift2[0] && cfg.rate_shift1[0] <= 30;
}

// The vector generators' lane types: 16 int64 lanes as N registers of W.  Each
// provides (all inline, compiled for its ISA): load (aligned int64), set1,
// zero, ld_r (the rectified samples of W lanes: int64 from the block buffer, or
// int32 from the stage, zero-extended since |y| >= 0), shr_nonneg (the power
// estimate's shift; high >= 0), add, sub, max, sllv (a shift by >= 64 gives 0:
// padded lanes), and_, or_, all_max (the maximum of the N registers' lanes, in
// every lane; all >= 0), fire (integrate-and-fire: v >= th spikes, subtracts th
// and, when counting, adds one to cnt) and store.
#define XYLO_T512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
#define XYLO_T256 __attribute__((target("avx2,fma")))
#define XYLO_LANE_OP static inline

struct Lanes512 {  // AVX-512: two registers of 8 int64
    using V = __m512i;
    static constexpr int N = 2, W = 8;
    XYLO_T512 XYLO_LANE_OP V load(const int64_t* p) { return _mm512_load_si512(p); }
    XYLO_T512 XYLO_LANE_OP V set1(int64_t v) { return _mm512_set1_epi64(v); }
    XYLO_T512 XYLO_LANE_OP V zero() { return _mm512_setzero_si512(); }
    XYLO_T512 XYLO_LANE_OP V ld_r(const int64_t* p) { return _mm512_load_si512(p); }
    XYLO_T512 XYLO_LANE_OP V ld_r(const int32_t* p) {
        return _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    XYLO_T512 XYLO_LANE_OP V shr_nonneg(V a, V s) { return _mm512_srav_epi64(a, s); }
    XYLO_T512 XYLO_LANE_OP V add(V a, V b) { return _mm512_add_epi64(a, b); }
    XYLO_T512 XYLO_LANE_OP V sub(V a, V b) { return _mm512_sub_epi64(a, b); }
    XYLO_T512 XYLO_LANE_OP V max(V a, V b) { return _mm512_max_epi64(a, b); }
    XYLO_T512 XYLO_LANE_OP V sllv(V a, V s) { return _mm512_sllv_epi64(a, s); }
    XYLO_T512 XYLO_LANE_OP V and_(V a, V b) { return _mm512_and_si512(a, b); }
    XYLO_T512 XYLO_LANE_OP V or_(V a, V b) { return _mm512_or_si512(a, b); }
    XYLO_T512 XYLO_LANE_OP V all_max(const V* t) {
        V m = _mm512_max_epi64(t[0], t[1]);
        m = _mm512_max_epi64(m, _mm512_shuffle_i64x2(m, m, 0x4E));
        m = _mm512_max_epi64(m, _mm512_shuffle_i64x2(m, m, 0xB1));
        return _mm512_max_epi64(m, _mm512_shuffle_epi32(m, _MM_PERM_BADC));
    }
    template <bool COUNT>
    XYLO_T512 XYLO_LANE_OP void fire(V& iaf, V& cnt, V v, V th) {
        const __mmask8 k = _mm512_cmpge_epi64_mask(v, th);
        iaf = _mm512_mask_sub_epi64(v, k, v, th);
        if (COUNT) cnt = _mm512_mask_add_epi64(cnt, k, cnt, _mm512_set1_epi64(1));
    }
    XYLO_T512 XYLO_LANE_OP void store(int64_t* p, V a) { _mm512_store_si512(p, a); }
};

// AVX2: four registers of 4 int64.  AVX2 has no arithmetic 64-bit shift and no
// 64-bit max: the power estimate is never negative (the logical vpsrlvq equals
// the arithmetic shift), and max is a vpcmpgtq + blend.
struct Lanes256 {
    using V = __m256i;
    static constexpr int N = 4, W = 4;
    XYLO_T256 XYLO_LANE_OP V load(const int64_t* p) { return _mm256_load_si256(reinterpret_cast<const V*>(p)); }
    XYLO_T256 XYLO_LANE_OP V set1(int64_t v) { return _mm256_set1_epi64x(v); }
    XYLO_T256 XYLO_LANE_OP V zero() { return _mm256_setzero_si256(); }
    XYLO_T256 XYLO_LANE_OP V ld_r(const int64_t* p) { return load(p); }
    XYLO_T256 XYLO_LANE_OP V ld_r(const int32_t* p) {
        return _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    XYLO_T256 XYLO_LANE_OP V shr_nonneg(V a, V s) { return _mm256_srlv_epi64(a, s); }
    XYLO_T256 XYLO_LANE_OP V add(V a, V b) { return _mm256_add_epi64(a, b); }
    XYLO_T256 XYLO_LANE_OP V sub(V a, V b) { return _mm256_sub_epi64(a, b); }
    XYLO_T256 XYLO_LANE_OP V max(V a, V b) { return _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(b, a)); }
    XYLO_T256 XYLO_LANE_OP V sllv(V a, V s) { return _mm256_sllv_epi64(a, s); }
    XYLO_T256 XYLO_LANE_OP V and_(V a, V b) { return _mm256_and_si256(a, b); }
    XYLO_T256 XYLO_LANE_OP V or_(V a, V b) { return _mm256_or_si256(a, b); }
    XYLO_T256 XYLO_LANE_OP V all_max(const V* t) {
        V m = max(max(t[0], t[1]), max(t[2], t[3]));
        m = max(m, _mm256_permute4x64_epi64(m, 0x4E));
        return max(m, _mm256_permute4x64_epi64(m, 0xB1));
    }
    template <bool COUNT>
    XYLO_T256 XYLO_LANE_OP void fire(V& iaf, V& cnt, V v, V th) {
        const V spike = _mm256_xor_si256(_mm256_cmpgt_epi64(th, v), _mm256_set1_epi64x(-1));  // v >= th
        iaf = _mm256_sub_epi64(v, _mm256_and_si256(th, spike));
        if (COUNT) cnt = _mm256_sub_epi64(cnt, spike);
    }
    XYLO_T256 XYLO_LANE_OP void store(int64_t* p, V a) { _mm256_store_si256(reinterpret_cast<V*>(p), a); }
};

template <class L>
struct SpikeVec {
    using V = typename L::V;
    V vlps[L::N], veps[L::N], vb1[L::N], vb2[L::N], vfix[L::N], vuj[L::N], vuo[L::N], vuf[L::N];
    V high[L::N], iaf[L::N], cnt[L::N];
    V ueps, ub1, ub2;  // kUniform: channel 0's eps, b1, b2 in every lane
};

// One sample of the generator (spike_step's operations) over the 16 lanes; the
// multiplications by 2^b1 and 2^b2 are shifts (equal in two's complement).
template <class L, bool COUNT, int MODE, class P>
inline void spike_step_vec(SpikeVec<L>& q, const P* r_) {
    using V = typename L::V;
    V r[L::N], thr[L::N];
    for (int h = 0; h < L::N; ++h) {
        r[h] = L::ld_r(r_ + L::W * h);
        const V low = L::shr_nonneg(q.high[h], q.vlps[h]);
        q.high[h] = L::add(L::sub(q.high[h], low), r[h]);
        if (MODE == kUniform) {
            thr[h] = low;  // the threshold follows from the maximum power estimate
        } else {
            const V m = L::max(low, q.veps[h]);
            thr[h] = L::sub(L::sllv(m, q.vb1[h]), L::sllv(m, q.vb2[h]));
        }
    }
    V jm = L::all_max(thr);
    if (MODE == kUniform) {
        const V m = L::max(jm, q.ueps);
        jm = L::sub(L::sllv(m, q.ub1), L::sllv(m, q.ub2));
    }
    for (int h = 0; h < L::N; ++h) {
        const V th = MODE != kSelect ? jm : L::or_(L::or_(L::and_(jm, q.vuj[h]), L::and_(thr[h], q.vuo[h])),
                                                 L::and_(q.vfix[h], q.vuf[h]));
        L::template fire<COUNT>(q.iaf[h], q.cnt[h], L::add(q.iaf[h], r[h]), th);
    }
}

// The vector generator over one signal's samples from src (prepend_reversed:
// first backwards over the reversed prefix, no counts); counts [F, C].  Its
// instances are flattened into the per-ISA functions below, which compile
// every operation for their ISA.
template <class L, int MODE, class Src>
inline void spike_signal_lanes(Src& src, int64_t C, int64_t T, const SpikeConfig& cfg, bool rev,
                               int64_t* counts) {
    const LaneSettings ls = lane_settings(cfg, C);
    SpikeVec<L> q;
    for (int h = 0; h < L::N; ++h) {
        const int o = L::W * h;
        q.vlps[h] = L::load(ls.lps + o);
        q.veps[h] = L::load(ls.eps + o);
        q.vb1[h] = L::load(ls.b1 + o);
        q.vb2[h] = L::load(ls.b2 + o);
        q.vfix[h] = L::load(ls.fixed + o);
        q.vuj[h] = L::load(ls.uj + o);
        q.vuo[h] = L::load(ls.uo + o);
        q.vuf[h] = L::load(ls.uf + o);
        q.high[h] = q.iaf[h] = q.cnt[h] = L::zero();
    }
    q.ueps = L::set1(ls.eps[0]);
    q.ub1 = L::set1(ls.b1[0]);
    q.ub2 = L::set1(ls.b2[0]);
    if (rev) {
        for (int64_t t1 = T; t1 > 0; t1 -= kSpikeBlock) {
            const int64_t t0 = std::max<int64_t>(0, t1 - kSpikeBlock);
            const auto* rows = src.rows(t0, t1 - t0);
            for (int64_t i = t1 - t0 - 1; i >= 0; --i) spike_step_vec<L, false, MODE>(q, rows + i * kLanes);
        }
    }
    const int64_t R = cfg.raster_factor;
    int64_t f = 0, frame_end = std::min(R, T);
    for (int64_t t0 = 0; t0 < T; t0 += kSpikeBlock) {
        const int64_t n = std::min(kSpikeBlock, T - t0);
        const auto* rows = src.rows(t0, n);
        for (int64_t i = 0; i < n; ++i) {
            spike_step_vec<L, true, MODE>(q, rows + i * kLanes);
            if (t0 + i + 1 == frame_end) {
                alignas(64) int64_t cl[kLanes];
                for (int h = 0; h < L::N; ++h) {
                    L::store(cl + L::W * h, q.cnt[h]);
                    q.cnt[h] = L::zero();
                }
                int64_t* out = counts + f * C;
                for (int64_t c = 0; c < C; ++c) out[c] = std::min(cl[c], cfg.max_spikes);
                ++f;
                frame_end = std::min(frame_end + R, T);
            }
        }
    }
}

template <int MODE, class Src>
XYLO_T512 __attribute__((flatten)) void spike_signal_avx512(Src& src, int64_t C, int64_t T,
                                                            const SpikeConfig& cfg, bool rev, int64_t* counts) {
    spike_signal_lanes<Lanes512, MODE>(src, C, T, cfg, rev, counts);
}

template <int MODE, class Src>
XYLO_T256 __attribute__((flatten)) void spike_signal_avx2(Src& src, int64_t C, int64_t T,
                                                          const SpikeConfig& cfg, bool rev, int64_t* counts) {
    spike_signal_lanes<Lanes256, MODE>(src, C, T, cfg, rev, counts);
}
#endif

#if XYLO_X86
// The vector generator of the ISA path over one signal's samples from src.
// Every channel adaptive with one joint threshold (the chip's default): the
// threshold of every lane is the joint maximum, without the per-lane select
// (lanes >= C are not returned, whatever they do).
template <class Src>
void spike_signal_vec(Src& src, int64_t C, int64_t T, const SpikeConfig& cfg, bool rev, int64_t* counts) {
    bool joint = cfg.joint_normalization;
    for (int64_t c = 0; c < C; ++c) joint = joint && cfg.adaptive[c];
    const int mode = !joint ? kSelect : Src::kBelow31 && uniform_threshold(cfg, C) ? kUniform : kJoint;
    if (isa() == Isa::Avx512) {
        if (mode == kUniform) return spike_signal_avx512<kUniform>(src, C, T, cfg, rev, counts);
        return mode == kJoint ? spike_signal_avx512<kJoint>(src, C, T, cfg, rev, counts)
                              : spike_signal_avx512<kSelect>(src, C, T, cfg, rev, counts);
    }
    if (mode == kUniform) return spike_signal_avx2<kUniform>(src, C, T, cfg, rev, counts);
    return mode == kJoint ? spike_signal_avx2<kJoint>(src, C, T, cfg, rev, counts)
                          : spike_signal_avx2<kSelect>(src, C, T, cfg, rev, counts);
}
#endif

}  // namespace

void spike_signal(const int64_t* y, int64_t C, int64_t T, const SpikeConfig& cfg, bool rev,
                  int64_t* counts) {
#if XYLO_X86
    if (isa() == Isa::Avx512 || isa() == Isa::Avx2) {
        RowsSource src(y, C, T);
        return spike_signal_vec(src, C, T, cfg, rev, counts);
    }
#endif
    spike_signal_generic(y, C, T, cfg, rev, counts);
}

#if XYLO_X86
void spike_signal_staged(const int32_t* stage, int64_t C, int64_t T, const SpikeConfig& cfg, bool rev,
                         int64_t* counts) {
    StageSource src{stage};
    spike_signal_vec(src, C, T, cfg, rev, counts);
}
#endif

}  // namespace detail
}  // namespace xylo
}  // namespace learnafe
