// SIMD packs of the biquad kernels: Pack<W, S> holds W double lanes (one per
// channel) as W / S native GCC/Clang vectors of S doubles (8 on AVX-512, 4 on
// AVX2, 2 otherwise); every per-sample operation of the kernels is written
// once on packs.  Fused multiply-adds are explicit (fmadd/fnmadd: one
// instruction on the AVX-512 and AVX2 paths, fma() per lane on the baseline
// path) and the kernels are compiled with -ffp-contract=off, so every path
// rounds identically.  Also: conversions to and from the I/O type,
// in-register transposes, lane sums in a fixed order, streaming stores.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#if defined(__GNUC__)
#define LAFE_INLINE inline __attribute__((always_inline))
#define LAFE_INLINE_LAMBDA __attribute__((always_inline))  // after a lambda's parameter list
#else
#define LAFE_INLINE inline
#define LAFE_INLINE_LAMBDA
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define LAFE_X86 1
#if defined(__clang__)
#define LAFE_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#else
#define LAFE_TARGET_AVX512 \
    __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,prefer-vector-width=512")))
#endif
#define LAFE_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define LAFE_X86 0
#endif

namespace learnafe {
namespace biquad {
namespace detail {


// Non-temporal store of a whole vector to an address aligned to its size, as
// 16-byte SSE2 streaming stores (the baseline of every x86-64 path; the
// write-combining buffer merges them into whole-line writes).
//
// On the AVX-512 path (S = 8 doubles per register) a 64-byte vector is one
// full-line streaming store (vmovntps/vmovntpd zmm): nothing has to be
// combined in the write-combining buffers, which matters with 16 output rows
// written at once.
template <int S, class F, class VF>
LAFE_INLINE void stream_store(F* q, const VF& v) {
#if LAFE_X86
    if constexpr (S == 8 && sizeof(VF) == 64) {
        if constexpr (std::is_same<F, double>::value)
            __asm__("vmovntpd %1, %0" : "=m"(*reinterpret_cast<VF*>(q)) : "v"(v));
        else
            __asm__("vmovntps %1, %0" : "=m"(*reinterpret_cast<VF*>(q)) : "v"(v));
        return;
    }
    constexpr int kPer = 16 / sizeof(F);
    for (int i = 0; i < static_cast<int>(sizeof(VF) / 16); ++i) {
        if constexpr (std::is_same<F, double>::value) {
            __m128d h;
            std::memcpy(&h, reinterpret_cast<const char*>(&v) + 16 * i, 16);
            _mm_stream_pd(q + kPer * i, h);
        } else {
            __m128 h;
            std::memcpy(&h, reinterpret_cast<const char*>(&v) + 16 * i, 16);
            _mm_stream_ps(q + kPer * i, h);
        }
    }
#else
    std::memcpy(q, &v, sizeof(VF));
#endif
}
// ---------------------------------------------------------------- lanes ---

template <class T, int N>
struct VecOf {
    typedef T V __attribute__((vector_size(sizeof(T) * N)));
    // the same vector type with element alignment, for loads/stores by value
    typedef T U __attribute__((vector_size(sizeof(T) * N), aligned(sizeof(T)), may_alias));
};

// W double lanes (one per channel) as NV = W / S native vectors of S doubles
// (S = 8 on AVX-512, 4 on AVX2, 2 on the baseline), so that the state stays
// in registers.  Arithmetic is lane-wise and identical for every S.
template <int W, int S>
struct Pack {
    static constexpr int kW = W;
    static constexpr int kS = S;
    static constexpr int kN = W / S;
    typedef typename VecOf<double, S>::V v;
    v p[kN];

    static LAFE_INLINE Pack zero() {
        Pack r;
        for (int n = 0; n < kN; ++n) r.p[n] = v{} ;
        return r;
    }
    typedef typename VecOf<double, S>::U u;
    static LAFE_INLINE Pack load(const double* q) {
        Pack r;
        for (int n = 0; n < kN; ++n) r.p[n] = *reinterpret_cast<const u*>(q + n * S);
        return r;
    }
    LAFE_INLINE void store(double* q) const {
        for (int n = 0; n < kN; ++n) *reinterpret_cast<u*>(q + n * S) = p[n];
    }
};

#define LAFE_PACK_OP(OP)                                                        \
    template <int W, int S>                                                     \
    LAFE_INLINE Pack<W, S> operator OP(const Pack<W, S>& a, const Pack<W, S>& b) { \
        Pack<W, S> r;                                                           \
        for (int n = 0; n < W / S; ++n) r.p[n] = a.p[n] OP b.p[n];             \
        return r;                                                               \
    }                                                                           \
    template <int W, int S>                                                     \
    LAFE_INLINE Pack<W, S> operator OP(double a, const Pack<W, S>& b) {         \
        Pack<W, S> r;                                                           \
        for (int n = 0; n < W / S; ++n) r.p[n] = a OP b.p[n];                  \
        return r;                                                               \
    }                                                                           \
    template <int W, int S>                                                     \
    LAFE_INLINE Pack<W, S>& operator OP##=(Pack<W, S>& a, const Pack<W, S>& b) { \
        for (int n = 0; n < W / S; ++n) a.p[n] = a.p[n] OP b.p[n];             \
        return a;                                                               \
    }
LAFE_PACK_OP(+)
LAFE_PACK_OP(-)
LAFE_PACK_OP(*)
#undef LAFE_PACK_OP

template <int W, int S>
LAFE_INLINE Pack<W, S> operator-(const Pack<W, S>& a) {
    Pack<W, S> r;
    for (int n = 0; n < W / S; ++n) r.p[n] = -a.p[n];
    return r;
}

// Fused multiply-adds with one rounding, written out explicitly so that every
// path rounds identically: vfmadd231pd/vfnmadd231pd on the AVX-512 and AVX2
// paths (S = 8 or 4 doubles per register), fma() per lane on the baseline
// path (hardware FMA where the CPU has it, exact software emulation
// otherwise).  The compiler contracts nothing by itself (-ffp-contract=off).
template <int S, class v>
LAFE_INLINE v vfmadd(v a, v b, v c) {  // a * b + c
#if LAFE_X86
    if constexpr (S == 8 || S == 4) {
        __asm__("vfmadd231pd %2, %1, %0" : "+v"(c) : "v"(a), "v"(b));
        return c;
    }
#endif
    v r;
    for (int i = 0; i < S; ++i) r[i] = __builtin_fma(a[i], b[i], c[i]);
    return r;
}

template <int S, class v>
LAFE_INLINE v vfnmadd(v a, v b, v c) {  // c - a * b
#if LAFE_X86
    if constexpr (S == 8 || S == 4) {
        __asm__("vfnmadd231pd %2, %1, %0" : "+v"(c) : "v"(a), "v"(b));
        return c;
    }
#endif
    v r;
    for (int i = 0; i < S; ++i) r[i] = __builtin_fma(-a[i], b[i], c[i]);
    return r;
}

template <int W, int S>
LAFE_INLINE Pack<W, S> fmadd(const Pack<W, S>& a, const Pack<W, S>& b, const Pack<W, S>& c) {
    Pack<W, S> r;
    for (int n = 0; n < W / S; ++n) r.p[n] = vfmadd<S>(a.p[n], b.p[n], c.p[n]);
    return r;
}

template <int W, int S>
LAFE_INLINE Pack<W, S> fnmadd(const Pack<W, S>& a, const Pack<W, S>& b, const Pack<W, S>& c) {
    Pack<W, S> r;
    for (int n = 0; n < W / S; ++n) r.p[n] = vfnmadd<S>(a.p[n], b.p[n], c.p[n]);
    return r;
}

template <int W, int S>
LAFE_INLINE Pack<W, S> broadcast(double x) {
    Pack<W, S> r;
    typename Pack<W, S>::v b;
#if LAFE_X86
    if constexpr (S == 8 || S == 4) {
        // one vbroadcastsd (generic vector code lowers to a chain of inserts)
        __asm__("vbroadcastsd %1, %0" : "=v"(b) : "v"(x));
    } else {
        for (int i = 0; i < S; ++i) b[i] = x;
    }
#else
    for (int i = 0; i < S; ++i) b[i] = x;
#endif
    for (int n = 0; n < W / S; ++n) r.p[n] = b;
    return r;
}

// Sum of the W lanes in an order that does not depend on S: a halving tree
// (lane l + W/2 onto lane l, then l + W/4, ...).
template <int H, int S, class v, std::size_t... I>
LAFE_INLINE v fold_half(v x, std::index_sequence<I...>) {
    // lanes [H, 2H) onto [0, H); upper lanes are don't-care
    return x + __builtin_shufflevector(x, x, ((I + H) % S)...);
}

template <int S, class v, int H = S / 2>
LAFE_INLINE double hsum_vec(v x) {
    if constexpr (H >= 1) {
        x = fold_half<H, S>(x, std::make_index_sequence<S>());
        return hsum_vec<S, v, H / 2>(x);
    } else {
        return x[0];
    }
}

template <int W, int S>
LAFE_INLINE double hsum(const Pack<W, S>& a) {
    typename Pack<W, S>::v acc[W / S];
    for (int n = 0; n < W / S; ++n) acc[n] = a.p[n];
    for (int m = W / S / 2; m >= 1; m /= 2)
        for (int n = 0; n < m; ++n) acc[n] = acc[n] + acc[n + m];
    return hsum_vec<S>(acc[0]);
}

// Conversions between a Pack and W values of the I/O type F.
template <class F, int W, int S>
LAFE_INLINE Pack<W, S> pack_from_io(const F* q) {
    if constexpr (std::is_same<F, double>::value) {
        return Pack<W, S>::load(q);
    } else {
        Pack<W, S> r;
        for (int n = 0; n < W / S; ++n) {
            const typename VecOf<F, S>::V f = *reinterpret_cast<const typename VecOf<F, S>::U*>(q + n * S);
            r.p[n] = __builtin_convertvector(f, typename Pack<W, S>::v);
        }
        return r;
    }
}

template <class F, int W, int S>
LAFE_INLINE void pack_to_io(F* q, const Pack<W, S>& a) {
    if constexpr (std::is_same<F, double>::value) {
        a.store(q);
    } else {
        for (int n = 0; n < W / S; ++n)
            *reinterpret_cast<typename VecOf<F, S>::U*>(q + n * S) =
                __builtin_convertvector(a.p[n], typename VecOf<F, S>::V);
    }
}

// Concatenation of two vectors of N elements into one of 2N (in registers).
template <class V, std::size_t... I>
LAFE_INLINE auto concat2(V lo, V hi, std::index_sequence<I...>) {
    return __builtin_shufflevector(lo, hi, I...);
}

// The first or second half of a vector of 2N elements.
template <int Off, class V, std::size_t... I>
LAFE_INLINE auto half_of(V v, std::index_sequence<I...>) {
    return __builtin_shufflevector(v, v, (I + Off)...);
}

// N pieces of S elements of type T, concatenated into one vector of N * S.
template <class T, int S, int N>
struct Concat {
    typedef typename VecOf<T, S * N>::V Out;
    static LAFE_INLINE Out run(const typename VecOf<T, S>::V* v) {
        if constexpr (N == 1) {
            return v[0];
        } else {
            const auto lo = Concat<T, S, N / 2>::run(v);
            const auto hi = Concat<T, S, N / 2>::run(v + N / 2);
            return concat2(lo, hi, std::make_index_sequence<S * N>());
        }
    }
};

// A Pack as one vector of W values of the I/O type F, without a round trip
// through memory (a store of halves followed by a full-width load defeats
// store-to-load forwarding).  Rounds exactly as pack_to_io.
template <class F, int W, int S>
LAFE_INLINE typename VecOf<F, W>::V pack_to_vec(const Pack<W, S>& a) {
    if constexpr (S < 8) {
        // Narrower paths: vectors of W values of F span several registers,
        // and the generic shuffles of those lower to per-element extracts;
        // going through memory is cheaper there.
        F rows[W];
        pack_to_io<F>(rows, a);
        typename VecOf<F, W>::V r;
        std::memcpy(&r, rows, sizeof(r));
        return r;
    }
    typename VecOf<F, S>::V parts[W / S];
    for (int n = 0; n < W / S; ++n) parts[n] = __builtin_convertvector(a.p[n], typename VecOf<F, S>::V);
    return Concat<F, S, W / S>::run(parts);
}

// Inverse of pack_to_vec: W values of F (one vector) as a Pack of doubles.
template <class F, int W, int S>
LAFE_INLINE void split_to(typename VecOf<F, W>::V v, typename VecOf<F, S>::V* parts) {
    if constexpr (W == S) {
        parts[0] = v;
    } else {
        split_to<F, W / 2, S>(half_of<0>(v, std::make_index_sequence<W / 2>()), parts);
        split_to<F, W / 2, S>(half_of<W / 2>(v, std::make_index_sequence<W / 2>()), parts + W / S / 2);
    }
}

template <class F, int W, int S>
LAFE_INLINE Pack<W, S> pack_from_vec(typename VecOf<F, W>::V v) {
    if constexpr (S < 8) {
        F rows[W];
        std::memcpy(rows, &v, sizeof(rows));
        return pack_from_io<F, W, S>(rows);
    }
    typename VecOf<F, S>::V parts[W / S];
    split_to<F, W, S>(v, parts);
    Pack<W, S> r;
    for (int n = 0; n < W / S; ++n) r.p[n] = __builtin_convertvector(parts[n], typename Pack<W, S>::v);
    return r;
}

// In-register transpose of an N x N block held as N vectors of N elements:
// stage D swaps bit D of the row and column indices, all stages together
// swap rows and columns.  Shuffles with constant masks (one vpermt2ps per
// vector and stage on AVX-512).
template <int D, int N>
constexpr int keep_index(int c) { return (c & D) ? N + c - D : c; }
template <int D, int N>
constexpr int swap_index(int c) { return (c & D) ? N + c : c + D; }

template <int D, int N, class V, std::size_t... I>
LAFE_INLINE void butterfly(V& ri, V& rj, std::index_sequence<I...>) {
    const V ni = __builtin_shufflevector(ri, rj, keep_index<D, N>(I)...);
    const V nj = __builtin_shufflevector(ri, rj, swap_index<D, N>(I)...);
    ri = ni;
    rj = nj;
}

// (Stages D < Stop only: the float32 16 x 16 transpose of the AVX-512 path
// leaves its last stage, D = 8, to the concatenation or split of the 8-lane
// halves that it needs anyway; see kHalfStage.)
template <int N, class V, int D = 1, int Stop = N>
LAFE_INLINE void transpose(V* r) {
    for (int i = 0; i < N; ++i)
        if (!(i & D)) butterfly<D, N>(r[i], r[i + D], std::make_index_sequence<N>());
    if constexpr (2 * D < Stop) transpose<N, V, 2 * D, Stop>(r);
}

// The float32 16-lane path of AVX-512 (two native vectors of 8 doubles per
// sample): a sample's two halves, rounded to float32, are 8-float vectors,
// and the transpose's last stage (rows i and i + 8 exchange their halves) is
// done by joining or splitting those halves, without a shuffle of its own.
template <class F, class V>
constexpr bool kHalfStage = std::is_same<F, float>::value && V::kW == 16 && V::kS == 8;

// ------------------------------------------- AVX2 float32 tiles (S = 4) ---
//
// On the AVX2 path a register holds 4 doubles or 8 floats, and the generic
// W x W transpose above lowers to per-element moves there.  Its float32 I/O
// goes through 8-sample x 4-channel tiles instead: each sample's 4-lane
// double vectors are rounded to float32 (one vcvtpd2ps each) into a staging
// row, and a tile is transposed by loading rows s and s + 4 into the two
// 128-bit halves of one register (vinsertf128 from memory: no shuffle) and
// one in-lane 4 x 4 transpose (8 shuffles for 32 floats).  The values are the
// same roundings as pack_to_io / pack_from_io, only moved differently.
template <class F, class V>
constexpr bool kTile4 = std::is_same<F, float>::value && V::kS == 4 && V::kW % 4 == 0;

typedef VecOf<float, 8>::V F8;
typedef VecOf<float, 4>::V F4;
typedef VecOf<float, 8>::U F8u;
typedef VecOf<float, 4>::U F4u;

// In each 128-bit half, the 4 x 4 transpose of rows r[0..3] (element i of
// half h of r[j] goes to element j of half h of r[i]).
LAFE_INLINE void transpose4_lanes(F8* r) {
    const F8 u0 = __builtin_shufflevector(r[0], r[1], 0, 8, 1, 9, 4, 12, 5, 13);
    const F8 u1 = __builtin_shufflevector(r[0], r[1], 2, 10, 3, 11, 6, 14, 7, 15);
    const F8 u2 = __builtin_shufflevector(r[2], r[3], 0, 8, 1, 9, 4, 12, 5, 13);
    const F8 u3 = __builtin_shufflevector(r[2], r[3], 2, 10, 3, 11, 6, 14, 7, 15);
    r[0] = __builtin_shufflevector(u0, u2, 0, 1, 8, 9, 4, 5, 12, 13);
    r[1] = __builtin_shufflevector(u0, u2, 2, 3, 10, 11, 6, 7, 14, 15);
    r[2] = __builtin_shufflevector(u1, u3, 0, 1, 8, 9, 4, 5, 12, 13);
    r[3] = __builtin_shufflevector(u1, u3, 2, 3, 10, 11, 6, 7, 14, 15);
}

// The two 4-float rows lo, hi as the halves of one register.
LAFE_INLINE F8 join4(const float* lo, const float* hi) {
    const F4 a = *reinterpret_cast<const F4u*>(lo);
    const F4 b = *reinterpret_cast<const F4u*>(hi);
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7);
}

// A Pack rounded to float32 into W consecutive floats (one vcvtpd2ps and one
// 16-byte store per native vector).
template <int W, int S>
LAFE_INLINE void pack_to_f32(float* q, const Pack<W, S>& a) {
    for (int n = 0; n < W / S; ++n)
        *reinterpret_cast<typename VecOf<float, S>::U*>(q + n * S) =
            __builtin_convertvector(a.p[n], typename VecOf<float, S>::V);
}

// Every lane of a Pack set to *q, loaded by the broadcast itself (no shuffle
// on the AVX2 and AVX-512 paths).
template <int W, int S>
LAFE_INLINE Pack<W, S> broadcast_load(const double* q) {
#if LAFE_X86
    if constexpr (S == 8 || S == 4) {
        Pack<W, S> r;
        typename Pack<W, S>::v b;
        __asm__("vbroadcastsd %1, %0" : "=v"(b) : "m"(*q));
        for (int n = 0; n < W / S; ++n) r.p[n] = b;
        return r;
    }
#endif
    return broadcast<W, S>(*q);
}

// S floats at q as one native vector of S doubles: one vcvtps2pd from
// memory on the AVX2 and AVX-512 paths (the generic conversion lowers to
// two 128-bit halves joined by a shuffle there).  Exact, as pack_from_io.
template <int S>
LAFE_INLINE typename VecOf<double, S>::V load_f32_as_f64(const float* q) {
    typedef typename VecOf<double, S>::V v;
    typedef typename VecOf<float, S>::U fu;
#if LAFE_X86
    if constexpr (S == 4 || S == 8) {
        v r;
        __asm__("vcvtps2pd %1, %0" : "=v"(r) : "m"(*reinterpret_cast<const fu*>(q)));
        return r;
    }
#endif
    return __builtin_convertvector(*reinterpret_cast<const fu*>(q), v);
}

// 8 floats to an address aligned to 32 bytes: a non-temporal store (one
// vmovntps ymm on the AVX2 path) or an ordinary one.
template <bool kStream>
LAFE_INLINE void store8(float* q, const F8& v) {
#if LAFE_X86
    if constexpr (kStream) {
        __asm__("vmovntps %1, %0" : "=m"(*reinterpret_cast<F8*>(q)) : "x"(v));
        return;
    }
#endif
    *reinterpret_cast<F8u*>(q) = v;
}

}  // namespace detail
}  // namespace biquad
}  // namespace learnafe
