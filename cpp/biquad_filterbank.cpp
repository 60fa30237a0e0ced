// Biquad filter bank kernels (see biquad_filterbank.h for the model).
//
// Structure of this file:
//  * Pack<W, S>: W double lanes (one per channel) held as W / S native
//    GCC/Clang vectors of S doubles (8 on AVX-512, 4 on AVX2, 2 otherwise).
//    Every per-sample operation below is written once on packs, so each step
//    of the recursion is a handful of vector multiply/adds across W channels.
//  * Unit kernels (Forward, Backward, EnvForward, EnvBackward): the work for
//    one (batch item, channel block), always inlined into...
//  * ...ISA wrappers compiled with target attributes (AVX-512, AVX2+FMA,
//    baseline), chosen once at run time, so the binary runs on any x86-64
//    (and anything else through the baseline path).
//  * Compiled with -ffp-contract=off: every product and sum is rounded as
//    written, and the fused multiply-adds are explicit (fmadd/fnmadd below:
//    one instruction on the AVX-512 and AVX2 paths, fma() per lane on the
//    baseline path), so all code paths (block and tail loops, AVX-512, AVX2,
//    baseline) give bitwise identical results.
//  * launch(): OpenMP loop over units (dynamic schedule) with per-thread
//    scratch.  A unit is always computed by a single thread in a fixed order
//    and reductions across units run in a fixed order afterwards, so the
//    result does not depend on the thread count or the schedule.
#include "biquad_filterbank.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "counter_rng.h"
#include "parallel.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#if defined(__GNUC__)
#define LAFE_INLINE inline __attribute__((always_inline))
#else
#define LAFE_INLINE inline
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
namespace {

// Forward outputs of at least this size are written with streaming stores.
constexpr size_t kStreamBytes = size_t(8) << 20;

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

template <int N, class V, int D = 1>
LAFE_INLINE void transpose(V* r) {
    for (int i = 0; i < N; ++i)
        if (!(i & D)) butterfly<D, N>(r[i], r[i + D], std::make_index_sequence<N>());
    if constexpr (2 * D < N) transpose<N, V, 2 * D>(r);
}

// ------------------------------------------------------------- the bank ---

// Coefficients packed per channel block: b0[W] b1[W] b2[W] a1[W] a2[W],
// zero-padded (a padded lane has v = x and y = 0: harmless, never written).
template <class F>
struct Args {
    const F* x;
    int64_t B, T, C;
    int W;
    int64_t nblk;
    const double* coef;
    // forward / backward of the plain op
    const F* zi;
    F* y;
    F* zf;
    const F* gy;
    const F* gzf;
    F* gzi;
    // envelope
    int64_t hop, frames;
    double alpha;
    Rectify rectify;
    F* out;
    const F* gout;
    // envelope noise: per-lane std packed per channel block [nblk][W] (zero
    // padded) or null, the seed, the frame-start states [B][nblk][F][2][W]
    // (written by the forward when given, read by the backward when given),
    // per-(batch item, channel) partials of d/dstd [B, C]
    const double* noise_std;
    uint64_t seed;
    double* ck;
    double* gstd_part;
    bool stream;  // forward: write y with streaming stores (see Forward)
    // filter state at the start of every kTimeBlock samples, per unit
    // ([B * nblk][nb][2][W] doubles): written by the forward pass when
    // requested, read by the backward pass instead of recomputing it.
    double* ck_out;
    const double* ck_in;
    // gradients: gx [B, T] (or per-block partials in double when nblk > 1),
    // per-(batch item, channel) partials of gb/ga in double.
    F* gx;
    double* gx_part;
    double* gba_part;  // [B, C, 5]: gb0 gb1 gb2 ga1 ga2
};

template <class V>
struct Coef {
    V b0, b1, b2, a1, a2;
    LAFE_INLINE explicit Coef(const double* c)
        : b0(V::load(c)),
          b1(V::load(c + V::kW)),
          b2(V::load(c + 2 * V::kW)),
          a1(V::load(c + 3 * V::kW)),
          a2(V::load(c + 4 * V::kW)) {}
};

// One unit = (batch item bi, channel block blk), lanes c0 .. c0 + nc - 1.
struct Unit {
    int64_t bi, blk, c0;
    int nc;
};

template <class F>
LAFE_INLINE Unit unit_of(const Args<F>& p, int64_t u) {
    Unit r;
    r.bi = u / p.nblk;
    r.blk = u % p.nblk;
    r.c0 = r.blk * p.W;
    r.nc = static_cast<int>(std::min<int64_t>(p.W, p.C - r.c0));
    return r;
}

// One step of the recursion: returns v[n] and shifts the delay line.
template <class V>
LAFE_INLINE V recurse(const Coef<V>& k, double xt, V& v1, V& v2) {
    const V v = fnmadd(k.a1, v1, fnmadd(k.a2, v2, broadcast<V::kW, V::kS>(xt)));
    v2 = v1;
    v1 = v;
    return v;
}

// recurse() on a per-lane input (the noisy input of the envelope op).
template <class V>
LAFE_INLINE V recurse_in(const Coef<V>& k, const V& xin, V& v1, V& v2) {
    const V v = fnmadd(k.a1, v1, fnmadd(k.a2, v2, xin));
    v2 = v1;
    v1 = v;
    return v;
}

// y[n] from the delay line (v[n], v[n-1], v[n-2]).
template <class V>
LAFE_INLINE V fir(const Coef<V>& k, const V& v, const V& v1, const V& v2) {
    return fmadd(k.b2, v2, fmadd(k.b1, v1, k.b0 * v));
}

// The recursion for n samples starting at xs, from state (v1, v2) =
// (v[-1], v[-2]).  If vout is given, stores v[-2], v[-1], v[0..n) at
// vout[0..n+2) (W doubles each).
template <class V, class F>
LAFE_INLINE void advance(const Coef<V>& k, const F* xs, int64_t n, V& v1, V& v2, double* vout) {
    constexpr int W = V::kW;
    if (vout) {
        v2.store(vout);
        v1.store(vout + W);
        for (int64_t t = 0; t < n; ++t)
            recurse(k, static_cast<double>(xs[t]), v1, v2).store(vout + (t + 2) * W);
    } else {
        for (int64_t t = 0; t < n; ++t) recurse(k, static_cast<double>(xs[t]), v1, v2);
    }
}

// Runs the recursion over samples 0 .. T-1 from state (v1, v2), storing the
// state at the start of every block of `len` samples: ck[j] = (v1, v2) before
// sample j * len (2 x W doubles each).
template <class V, class F>
LAFE_INLINE void checkpoint(const Coef<V>& k, const F* xs, int64_t T, int64_t len, V& v1, V& v2,
                            double* ck) {
    constexpr int W = V::kW;
    for (int64_t j = 0, t0 = 0; t0 < T; ++j, t0 += len) {
        v1.store(ck + 2 * j * W);
        v2.store(ck + (2 * j + 1) * W);
        advance(k, xs + t0, std::min(len, T - t0), v1, v2, nullptr);
    }
}

// One reverse-time step of the adjoint at sample m, given g = dL/dy[m] and
// the delay line (v[m], v[m-1], v[m-2]).  Carries gy[m+1], gy[m+2] and
// lambda[m+1], lambda[m+2]; lambda = dL/dv (total), which is also dL/dx per
// channel.  Returns lambda[m].
template <class V>
struct Adjoint {
    V gyp1 = V::zero(), gyp2 = V::zero(), lp1 = V::zero(), lp2 = V::zero();
    V gb0 = V::zero(), gb1 = V::zero(), gb2 = V::zero(), ga1 = V::zero(), ga2 = V::zero();

    LAFE_INLINE V step(const Coef<V>& k, const V& g, const V& vm, const V& vm1, const V& vm2) {
        const V gvd = fmadd(k.b2, gyp2, fmadd(k.b1, gyp1, k.b0 * g));
        const V lam = fnmadd(k.a1, lp1, fnmadd(k.a2, lp2, gvd));
        gb0 = fmadd(g, vm, gb0);
        gb1 = fmadd(g, vm1, gb1);
        gb2 = fmadd(g, vm2, gb2);
        ga1 = fnmadd(lam, vm1, ga1);
        ga2 = fnmadd(lam, vm2, ga2);
        gyp2 = gyp1;
        gyp1 = g;
        lp2 = lp1;
        lp1 = lam;
        return lam;
    }

    template <class F>
    LAFE_INLINE void store_coef_grads(const Args<F>& p, const Unit& u) const {
        constexpr int W = V::kW;
        double t[5][W];
        gb0.store(t[0]);
        gb1.store(t[1]);
        gb2.store(t[2]);
        ga1.store(t[3]);
        ga2.store(t[4]);
        for (int l = 0; l < u.nc; ++l) {
            double* d = p.gba_part + ((u.bi * p.C) + u.c0 + l) * 5;
            for (int j = 0; j < 5; ++j) d[j] = t[j][l];
        }
    }
};

template <class V, class F>
LAFE_INLINE void load_state(const F* s, const Unit& u, int64_t C, V& v1, V& v2) {
    double t1[V::kW] = {}, t2[V::kW] = {};
    if (s) {
        for (int l = 0; l < u.nc; ++l) {
            const F* q = s + (u.bi * C + u.c0 + l) * 2;
            t1[l] = static_cast<double>(q[0]);
            t2[l] = static_cast<double>(q[1]);
        }
    }
    v1 = V::load(t1);
    v2 = V::load(t2);
}

template <class V, class F>
LAFE_INLINE void store_state(F* s, const Unit& u, int64_t C, const V& v1, const V& v2) {
    double t1[V::kW], t2[V::kW];
    v1.store(t1);
    v2.store(t2);
    for (int l = 0; l < u.nc; ++l) {
        F* q = s + (u.bi * C + u.c0 + l) * 2;
        q[0] = static_cast<F>(t1[l]);
        q[1] = static_cast<F>(t2[l]);
    }
}

// Channel sums (dL/dx of the unit's channels) for samples m0 .. m0 + n - 1.
template <class F>
LAFE_INLINE void store_gx_block(const Args<F>& p, const Unit& u, int64_t m0, int64_t n,
                                const double* sums) {
    if (p.nblk > 1) {
        std::memcpy(p.gx_part + (u.bi * p.nblk + u.blk) * p.T + m0, sums, sizeof(double) * n);
    } else {
        F* d = p.gx + u.bi * p.T + m0;
        for (int64_t t = 0; t < n; ++t) d[t] = static_cast<F>(sums[t]);
    }
}

// ------------------------------------------------------------- kernels ---

constexpr int64_t kTimeBlock = 128;  // samples per checkpoint block (multiple of 16)

// Scratch (doubles per thread) each kernel needs.
inline size_t scratch_backward(int W, int64_t T, bool own_checkpoints) {
    const int64_t nb = (T + kTimeBlock - 1) / kTimeBlock;
    return static_cast<size_t>(((own_checkpoints ? 2 * nb : 0) + 2 * (kTimeBlock + 2) + 2 * kTimeBlock) * W +
                               kTimeBlock);
}
inline int64_t noise_rows(int64_t n);
inline size_t scratch_env_backward(int W, int64_t frames, int64_t hop, bool noisy) {
    return static_cast<size_t>((2 * frames + (hop + 2) + (noisy ? noise_rows(hop) : 0)) * W + hop);
}

// One step of the filter: returns y[n], advances the delay line.
template <class V>
LAFE_INLINE V filter_step(const Coef<V>& k, double xt, V& v1, V& v2) {
    const V v = fnmadd(k.a1, v1, fnmadd(k.a2, v2, broadcast<V::kW, V::kS>(xt)));
    const V y = fir(k, v, v1, v2);
    v2 = v1;
    v1 = v;
    return y;
}

// One step of the filter on a per-lane input (the noisy input of the
// envelope op): returns y[n], advances the delay line.
template <class V>
LAFE_INLINE V filter_step_in(const Coef<V>& k, const V& xin, V& v1, V& v2) {
    const V v = fnmadd(k.a1, v1, fnmadd(k.a2, v2, xin));
    const V y = fir(k, v, v1, v2);
    v2 = v1;
    v1 = v;
    return y;
}

// Standard normal noise (counter_rng.h) of a unit's W channels for samples
// t0 .. t0 + n - 1, generated in whole groups of 4 samples: row r of nbuf
// (W doubles) is sample 4 * (t0 / 4) + r.  Returns the row of sample t0.
// nbuf holds at least n + 6 rows.
// Groups of 4 samples fill_noise generates at once (interleaved), and the
// scratch rows it needs for n samples (whole runs of kNoiseGroups groups).
constexpr int kNoiseGroups = 4;
inline int64_t noise_rows(int64_t n) { return n + 3 + 4 * kNoiseGroups; }

// Philox lanes per vector of a unit of V: 2 NS channels per Box-Muller
// vector (float32).
template <class V>
constexpr int noise_lanes() { return V::kS < V::kW / 2 ? V::kS : V::kW / 2; }

template <class V>
using NoiseKey = rng::PhiloxKey<noise_lanes<V>()>;

template <class F, class V>
LAFE_INLINE int64_t fill_noise(const Args<F>&, const Unit& u, const NoiseKey<V>& key, int64_t t0,
                               int64_t n, double* nbuf) {
    constexpr int W = V::kW;
    constexpr int NS = noise_lanes<V>();
    constexpr int K = kNoiseGroups;
    typedef typename rng::Lanes<NS>::vf vf;
    typedef typename VecOf<double, 2 * NS>::V vd;
    const int64_t j0 = t0 / 4, j1 = (t0 + n + 3) / 4;
    for (int64_t j = j0; j < j1; j += K) {
        double* row = nbuf + (j - j0) * 4 * W;
        for (int s = 0; s < W / (2 * NS); ++s) {
            vf o[K][4];
            rng::normals<NS, K>(key, static_cast<uint64_t>(u.bi), static_cast<uint64_t>(u.c0 + s * 2 * NS),
                                static_cast<uint64_t>(j), o);
            for (int k = 0; k < K; ++k)
                for (int r = 0; r < 4; ++r) {
                    const vd d = __builtin_convertvector(o[k][r], vd);
                    std::memcpy(row + (4 * k + r) * W + s * 2 * NS, &d, sizeof(vd));
                }
        }
    }
    return t0 - 4 * j0;
}

template <class F, class V>
struct Forward {
    static LAFE_INLINE void unit(const Args<F>& p, int64_t uid, double*) {
        constexpr int W = V::kW;
        typedef typename VecOf<F, W>::V VF;
        const Unit u = unit_of(p, uid);
        const Coef<V> k(p.coef + u.blk * 5 * W);
        const int64_t T = p.T;
        V v1, v2;
        load_state(p.zi, u, p.C, v1, v2);
        const F* xb = p.x + u.bi * T;
        F* yb = p.y + (u.bi * p.C + u.c0) * T;  // channel l at yb + l * T
        int64_t t0 = 0;
        // Large outputs are written with non-temporal (streaming) stores: the
        // output does not fit in the caches anyway, and a streaming store of a
        // whole line skips reading it first (which halves the memory traffic).
        // Only when every block store is aligned to the vector size (each row
        // starts aligned: aligned base and a row length that keeps it so).
        const bool stream = p.stream && reinterpret_cast<uintptr_t>(yb) % sizeof(VF) == 0 &&
                            (T * static_cast<int64_t>(sizeof(F))) % static_cast<int64_t>(sizeof(VF)) == 0;
        // W samples x W channels at a time, transposed in registers so that
        // each channel gets one contiguous W-sample store.
        double* ck = p.ck_out ? p.ck_out + uid * 2 * W * ((T + kTimeBlock - 1) / kTimeBlock) : nullptr;
        for (; t0 + W <= T; t0 += W) {
            if (ck && t0 % kTimeBlock == 0) {
                v1.store(ck + 2 * (t0 / kTimeBlock) * W);
                v2.store(ck + (2 * (t0 / kTimeBlock) + 1) * W);
            }
            VF r[W];
            for (int s = 0; s < W; ++s)
                r[s] = pack_to_vec<F>(filter_step(k, static_cast<double>(xb[t0 + s]), v1, v2));
            transpose<W>(r);
            if (stream) {
                for (int l = 0; l < u.nc; ++l) stream_store<V::kS>(yb + l * T + t0, r[l]);
            } else {
                for (int l = 0; l < u.nc; ++l) std::memcpy(yb + l * T + t0, &r[l], sizeof(VF));
            }
        }
#if LAFE_X86
        if (stream) __builtin_ia32_sfence();
#endif
        for (; t0 < T; ++t0) {
            if (ck && t0 % kTimeBlock == 0) {
                v1.store(ck + 2 * (t0 / kTimeBlock) * W);
                v2.store(ck + (2 * (t0 / kTimeBlock) + 1) * W);
            }
            double yl[W];
            filter_step(k, static_cast<double>(xb[t0]), v1, v2).store(yl);
            for (int l = 0; l < u.nc; ++l) yb[l * T + t0] = static_cast<F>(yl[l]);
        }
        if (p.zf) store_state(p.zf, u, p.C, v1, v2);
    }
};

// dL/dy of a unit for samples t0 .. t0 + n - 1 as n rows of W lanes (double).
template <class F, class V>
LAFE_INLINE void load_gy_block(const Args<F>& p, const Unit& u, int64_t t0, int64_t n, double* gyb) {
    constexpr int W = V::kW;
    typedef typename VecOf<F, W>::V VF;
    const F* gb = p.gy + (u.bi * p.C + u.c0) * p.T + t0;  // channel l at gb + l * T
    int64_t t = 0;
    for (; t + W <= n; t += W) {
        VF r[W];
        for (int l = 0; l < u.nc; ++l) std::memcpy(&r[l], gb + l * p.T + t, sizeof(VF));
        for (int l = u.nc; l < W; ++l) r[l] = VF{};  // padded lanes
        transpose<W>(r);
        for (int s = 0; s < W; ++s) pack_from_vec<F, W, V::kS>(r[s]).store(gyb + (t + s) * W);
    }
    for (; t < n; ++t) {
        double* q = gyb + t * W;
        for (int l = 0; l < W; ++l) q[l] = l < u.nc ? static_cast<double>(gb[l * p.T + t]) : 0.0;
    }
}

// Channel sums of lambda for many samples at once (16 lanes as two vectors of
// 8, the AVX-512 layout): the same halving tree as hsum (lane l + 8, then
// l + 4, l + 2, l + 1, so bitwise the same sums), but the shuffles of eight
// samples are shared: 15 additions and 14 shuffles per 8 samples instead of
// 32 and 24.  lam: [n][16] doubles; sums[t] for t < n.
template <class V>
constexpr bool kBatchedSum = V::kW == 16 && V::kS == 8;

template <class V, std::size_t... I>
LAFE_INLINE typename V::v pick8(typename V::v a, typename V::v b, std::index_sequence<I...>) {
    return __builtin_shufflevector(a, b, I...);
}

template <class V>
LAFE_INLINE void channel_sums(const double* lam, int64_t n, double* sums) {
    typedef typename V::v v;
    int64_t t = 0;
    for (; t + 8 <= n; t += 8) {
        v a[8];
        for (int i = 0; i < 8; ++i) {
            const V l = V::load(lam + (t + i) * 16);
            a[i] = l.p[0] + l.p[1];  // lane l + lane l + 8
        }
        v u[4];
        for (int i = 0; i < 4; ++i)  // lanes l + l + 4 of samples 2i, 2i + 1
            u[i] = __builtin_shufflevector(a[2 * i], a[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
                   __builtin_shufflevector(a[2 * i], a[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15);
        v w[2];
        for (int i = 0; i < 2; ++i)  // lanes l + l + 2 of samples 4i .. 4i + 3
            w[i] = __builtin_shufflevector(u[2 * i], u[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13) +
                   __builtin_shufflevector(u[2 * i], u[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15);
        const v e = __builtin_shufflevector(w[0], w[1], 0, 2, 4, 6, 8, 10, 12, 14) +
                    __builtin_shufflevector(w[0], w[1], 1, 3, 5, 7, 9, 11, 13, 15);
        *reinterpret_cast<typename VecOf<double, 8>::U*>(sums + t) = e;
    }
    for (; t < n; ++t) sums[t] = hsum(V::load(lam + t * 16));
}

template <class F, class V>
struct Backward {
    static LAFE_INLINE void unit(const Args<F>& p, int64_t uid, double* scratch) {
        constexpr int W = V::kW;
        const Unit u = unit_of(p, uid);
        const Coef<V> k(p.coef + u.blk * 5 * W);
        const int64_t T = p.T;
        const int64_t nb = (T + kTimeBlock - 1) / kTimeBlock;
        double* vcur = scratch;                      // [kTimeBlock + 2][W]: v[t0-2 ..] of block j
        double* vnext = vcur + (kTimeBlock + 2) * W;  // the same for block j - 1
        double* gyb = vnext + (kTimeBlock + 2) * W;  // [kTimeBlock][W]: dL/dy
        double* lbuf = gyb + kTimeBlock * W;         // [kTimeBlock][W]: lambda
        double* sums = lbuf + kTimeBlock * W;        // [kTimeBlock]: dL/dx (channel sums)
        const F* xb = p.x + u.bi * T;

        // Filter state at block starts: from the forward pass when it kept
        // them (bitwise the same values), else recomputed here.
        const double* ck;
        if (p.ck_in) {
            ck = p.ck_in + uid * 2 * nb * W;
        } else {
            double* own = sums + kTimeBlock;  // [nb][2][W]
            V v1, v2;
            load_state(p.zi, u, p.C, v1, v2);
            checkpoint(k, xb, T, kTimeBlock, v1, v2, own);
            ck = own;
        }

        V gz0, gz1;
        load_state(p.gzf, u, p.C, gz0, gz1);
        Adjoint<V> adj;
        if (nb > 0) {
            V c1 = V::load(ck + 2 * (nb - 1) * W), c2 = V::load(ck + (2 * nb - 1) * W);
            advance(k, xb + (nb - 1) * kTimeBlock, T - (nb - 1) * kTimeBlock, c1, c2, vcur);
        }
        for (int64_t j = nb - 1; j >= 0; --j) {
            const int64_t t0 = j * kTimeBlock;
            const int64_t n = std::min(kTimeBlock, T - t0);
            load_gy_block<F, V>(p, u, t0, n, gyb);
            // Pass A: the adjoint recursion lambda of block j (backward in
            // time, a chain of one multiply and one subtraction per sample),
            // interleaved with the recursion of block j - 1 (forward in time,
            // the same kind of chain): the two are independent, so each fills
            // the other's pipeline gaps.  Block j - 1 is always complete
            // (kTimeBlock samples); only the last block can be shorter.
            // The next block's dL/dy (in reverse time) is prefetched, one
            // cache line per step, so that the requests do not overflow the
            // line-fill buffers.
            constexpr int64_t kLineElems = 64 / static_cast<int64_t>(sizeof(F));
            constexpr int64_t kLines = kTimeBlock / kLineElems;
            const F* pf = j > 0 ? p.gy + (u.bi * p.C + u.c0) * T + t0 - kTimeBlock : nullptr;
            const int64_t nlines = j > 0 ? u.nc * kLines : 0;
            const int64_t per_step = (nlines + n - 1) / n;
            int64_t pf_line = 0, pf_done = 0;
            auto pass_a = [&](auto with_next) {
                constexpr bool kNext = decltype(with_next)::value;
                V r1 = V::zero(), r2 = V::zero();
                const F* xr = kNext ? xb + t0 - kTimeBlock : xb;
                int64_t i = 0;  // next sample of block j - 1
                if constexpr (kNext) {
                    r1 = V::load(ck + 2 * (j - 1) * W);
                    r2 = V::load(ck + (2 * j - 1) * W);
                    r2.store(vnext);
                    r1.store(vnext + W);
                    for (; i < kTimeBlock - n; ++i)
                        recurse(k, static_cast<double>(xr[i]), r1, r2).store(vnext + (i + 2) * W);
                }
                for (int64_t t = n - 1; t >= 0; --t) {
                    for (int64_t q = 0; q < per_step && pf_done < nlines; ++q, ++pf_done) {
                        __builtin_prefetch(pf + pf_line * kLineElems, 0, 3);
                        // lines of one channel, then the next channel's row
                        if (++pf_line == kLines) {
                            pf_line = 0;
                            pf += T;
                        }
                    }
                    if constexpr (kNext) {
                        recurse(k, static_cast<double>(xr[i]), r1, r2).store(vnext + (i + 2) * W);
                        ++i;
                    }
                    const int64_t m = t0 + t;
                    V lam = adj.step(k, V::load(gyb + t * W), V::load(vcur + (t + 2) * W),
                                     V::load(vcur + (t + 1) * W), V::load(vcur + t * W));
                    if (m >= T - 2) {
                        // dL/dv[m] also has the final-state gradient (v[T-1], v[T-2]).
                        const V extra = (m == T - 1) ? gz0 : gz1;
                        lam += extra;
                        adj.lp1 = lam;
                        adj.ga1 = fnmadd(extra, V::load(vcur + (t + 1) * W), adj.ga1);
                        adj.ga2 = fnmadd(extra, V::load(vcur + t * W), adj.ga2);
                    }
                    if constexpr (kBatchedSum<V>)
                        lam.store(lbuf + t * W);
                    else
                        sums[t] = hsum(lam);
                }
            };
            if (j > 0)
                pass_a(std::true_type());
            else
                pass_a(std::false_type());
            if constexpr (kBatchedSum<V>) channel_sums<V>(lbuf, n, sums);
            store_gx_block(p, u, t0, n, sums);
            std::swap(vcur, vnext);
        }
        adj.store_coef_grads(p, u);
        if (p.gzi) {
            // v[-1] feeds y[0], y[1], v[0], v[1]; v[-2] feeds y[0], v[0]; the final
            // state aliases them when T < 2.
            V gm1 = k.b1 * adj.gyp1 + k.b2 * adj.gyp2 - k.a1 * adj.lp1 - k.a2 * adj.lp2;
            V gm2 = k.b2 * adj.gyp1 - k.a2 * adj.lp1;
            if (T == 0) {
                gm1 += gz0;
                gm2 += gz1;
            } else if (T == 1) {
                gm1 += gz1;
            }
            store_state(p.gzi, u, p.C, gm1, gm2);
        }
    }
};

template <class V>
LAFE_INLINE V rectify(const V& y, Rectify r) {
    if (r == Rectify::Square) return y * y;
    V o;
    for (int n = 0; n < V::kN; ++n) o.p[n] = y.p[n] < 0 ? -y.p[n] : y.p[n];
    return o;
}

// d rectify / dy times g (|y|: sign(y) with sign(0) = 0, as torch.abs).
template <class V>
LAFE_INLINE V rectify_adjoint(const V& y, const V& g, Rectify r) {
    if (r == Rectify::Square) return 2.0 * (y * g);
    V o;
    const typename V::v zero = {};
    for (int n = 0; n < V::kN; ++n)
        o.p[n] = y.p[n] > 0 ? g.p[n] : (y.p[n] < 0 ? -g.p[n] : zero);
    return o;
}

template <class F, class V>
struct EnvForward {
    // Frames of the unit; with Noisy, channel c's input is x + std_c n_c.
    template <bool Noisy, Rectify R>
    static LAFE_INLINE void frames(const Args<F>& p, const Unit& u, const Coef<V>& k, double* nbuf) {
        constexpr int W = V::kW;
        const double alpha = p.alpha;
        const V sd = Noisy ? V::load(p.noise_std + u.blk * W) : V::zero();
        const NoiseKey<V> key(Noisy ? p.seed : 0);
        double* ck = p.ck ? p.ck + (u.bi * p.nblk + u.blk) * p.frames * 2 * W : nullptr;
        V v1 = V::zero(), v2 = V::zero(), e = V::zero();
        const F* xb = p.x + u.bi * p.T;
        for (int64_t f = 0; f < p.frames; ++f) {
            if (ck) {
                v1.store(ck + 2 * f * W);
                v2.store(ck + (2 * f + 1) * W);
            }
            const F* xs = xb + f * p.hop;
            if constexpr (Noisy) {
                const double* nr = nbuf + fill_noise<F, V>(p, u, key, f * p.hop, p.hop, nbuf) * W;
                for (int64_t t = 0; t < p.hop; ++t) {
                    const V xin = static_cast<double>(xs[t]) + sd * V::load(nr + t * W);
                    e += alpha * (rectify(filter_step_in(k, xin, v1, v2), R) - e);
                }
            } else {
                for (int64_t t = 0; t < p.hop; ++t)
                    e += alpha * (rectify(filter_step(k, static_cast<double>(xs[t]), v1, v2), R) - e);
            }
            double el[W];
            e.store(el);
            for (int l = 0; l < u.nc; ++l)
                p.out[(u.bi * p.C + u.c0 + l) * p.frames + f] = static_cast<F>(el[l]);
        }
    }

    static LAFE_INLINE void unit(const Args<F>& p, int64_t uid, double* scratch) {
        constexpr int W = V::kW;
        const Unit u = unit_of(p, uid);
        const Coef<V> k(p.coef + u.blk * 5 * W);
        if (p.noise_std) {
            if (p.rectify == Rectify::Abs) frames<true, Rectify::Abs>(p, u, k, scratch);
            else frames<true, Rectify::Square>(p, u, k, scratch);
        } else {
            if (p.rectify == Rectify::Abs) frames<false, Rectify::Abs>(p, u, k, scratch);
            else frames<false, Rectify::Square>(p, u, k, scratch);
        }
    }
};

template <class F, class V>
struct EnvBackward {
    // The recursion over one frame from (c1, c2), storing v at vout (as
    // `advance`), with channel c's input x + std_c n_c when Noisy.
    template <bool Noisy>
    static LAFE_INLINE void advance_frame(const Args<F>& p, const Unit& u, const Coef<V>& k,
                                          const V& sd, const NoiseKey<V>& key, int64_t t0, V& c1,
                                          V& c2, double* vout, double* nbuf, const double*& nr) {
        constexpr int W = V::kW;
        const F* xs = p.x + u.bi * p.T + t0;
        if constexpr (Noisy) {
            nr = nbuf + fill_noise<F, V>(p, u, key, t0, p.hop, nbuf) * W;
            if (vout) {
                c2.store(vout);
                c1.store(vout + W);
            }
            for (int64_t t = 0; t < p.hop; ++t) {
                const V xin = static_cast<double>(xs[t]) + sd * V::load(nr + t * W);
                const V v = recurse_in(k, xin, c1, c2);
                if (vout) v.store(vout + (t + 2) * W);
            }
        } else {
            (void)sd;
            (void)key;
            (void)nbuf;
            (void)nr;
            advance(k, xs, p.hop, c1, c2, vout);
        }
    }

    template <bool Noisy>
    static LAFE_INLINE void run(const Args<F>& p, const Unit& u, double* scratch) {
        constexpr int W = V::kW;
        const Coef<V> k(p.coef + u.blk * 5 * W);
        const int64_t hop = p.hop, nf = p.frames;
        const double alpha = p.alpha, decay = 1.0 - p.alpha;
        double* vbuf = scratch;                       // [hop + 2][W]
        double* sums = vbuf + (hop + 2) * W;          // [hop]
        double* nbuf = sums + hop;                    // [noise_rows(hop)][W] when Noisy
        double* ck = nbuf + (Noisy ? noise_rows(hop) * W : 0);  // [nf][2][W] unless given
        const V sd = Noisy ? V::load(p.noise_std + u.blk * W) : V::zero();
        const NoiseKey<V> key(Noisy ? p.seed : 0);
        const double* nr = nullptr;

        if (p.ck) {
            // frame-start states saved by the forward pass
            ck = p.ck + (u.bi * p.nblk + u.blk) * nf * 2 * W;
        } else {
            V v1 = V::zero(), v2 = V::zero();
            for (int64_t f = 0; f < nf; ++f) {
                v1.store(ck + 2 * f * W);
                v2.store(ck + (2 * f + 1) * W);
                advance_frame<Noisy>(p, u, k, sd, key, f * hop, v1, v2, nullptr, nbuf, nr);
            }
        }
        // Samples after the last frame do not reach the output.
        if (p.nblk > 1)
            std::fill(p.gx_part + (u.bi * p.nblk + u.blk) * p.T + nf * hop,
                      p.gx_part + (u.bi * p.nblk + u.blk + 1) * p.T, 0.0);
        else
            std::fill(p.gx + u.bi * p.T + nf * hop, p.gx + (u.bi + 1) * p.T, F(0));

        Adjoint<V> adj;
        V gsd = V::zero();  // d/dstd: sum of lambda * n
        V ge = V::zero();   // dL/de[m + 1]
        for (int64_t f = nf - 1; f >= 0; --f) {
            const int64_t t0 = f * hop;
            V c1 = V::load(ck + 2 * f * W), c2 = V::load(ck + (2 * f + 1) * W);
            advance_frame<Noisy>(p, u, k, sd, key, t0, c1, c2, vbuf, nbuf, nr);
            double gol[W] = {};
            for (int l = 0; l < u.nc; ++l)
                gol[l] = static_cast<double>(p.gout[(u.bi * p.C + u.c0 + l) * nf + f]);
            ge = decay * ge + V::load(gol);  // dL/de at the frame's last sample
            for (int64_t t = hop - 1; t >= 0; --t) {
                const V vm = V::load(vbuf + (t + 2) * W);
                const V vm1 = V::load(vbuf + (t + 1) * W);
                const V vm2 = V::load(vbuf + t * W);
                const V g = rectify_adjoint(fir(k, vm, vm1, vm2), alpha * ge, p.rectify);
                const V lam = adj.step(k, g, vm, vm1, vm2);
                if constexpr (Noisy) gsd += lam * V::load(nr + t * W);
                sums[t] = hsum(lam);
                if (t > 0) ge = decay * ge;
            }
            store_gx_block(p, u, t0, hop, sums);
        }
        adj.store_coef_grads(p, u);
        if constexpr (Noisy) {
            double t[W];
            gsd.store(t);
            for (int l = 0; l < u.nc; ++l) p.gstd_part[u.bi * p.C + u.c0 + l] = t[l];
        }
    }

    static LAFE_INLINE void unit(const Args<F>& p, int64_t uid, double* scratch) {
        const Unit u = unit_of(p, uid);
        if (p.noise_std) run<true>(p, u, scratch);
        else run<false>(p, u, scratch);
    }
};

// Standard normal noise n[b, c, t] (counter_rng.h) into p.out ([B, C, T]
// doubles, F = double), one unit = (batch item, channel block).
template <class F, class V>
struct NoiseFill {
    static LAFE_INLINE void unit(const Args<F>& p, int64_t uid, double* scratch) {
        constexpr int W = V::kW;
        const Unit u = unit_of(p, uid);
        constexpr int64_t kChunk = 256;
        const NoiseKey<V> key(p.seed);
        for (int64_t t0 = 0; t0 < p.T; t0 += kChunk) {
            const int64_t n = std::min(kChunk, p.T - t0);
            const double* nr = scratch + fill_noise<F, V>(p, u, key, t0, n, scratch) * W;
            for (int l = 0; l < u.nc; ++l) {
                F* d = p.out + (u.bi * p.C + u.c0 + l) * p.T + t0;
                for (int64_t t = 0; t < n; ++t) d[t] = static_cast<F>(nr[t * W + l]);
            }
        }
    }
};

// ------------------------------------------------------------ dispatch ---

enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };

Isa detect_isa() {
    const char* env = std::getenv("LEARNAFE_ISA");
#if LAFE_X86
    __builtin_cpu_init();
    const bool has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
    const bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    Isa best = has512 ? Isa::Avx512 : has2 ? Isa::Avx2 : Isa::Generic;
    if (env && std::strcmp(env, "generic") == 0) return Isa::Generic;
    if (env && std::strcmp(env, "avx2") == 0 && has2) return Isa::Avx2;
    return best;
#else
    (void)env;
    return Isa::Generic;
#endif
}

Isa isa() {
    static const Isa value = detect_isa();
    return value;
}

template <class F>
using UnitFn = void (*)(const Args<F>&, int64_t, double*);

template <class K, class F>
void run_generic(const Args<F>& p, int64_t u, double* s) {
    K::unit(p, u, s);
}
#if LAFE_X86
template <class K, class F>
LAFE_TARGET_AVX2 void run_avx2(const Args<F>& p, int64_t u, double* s) {
    K::unit(p, u, s);
}
template <class K, class F>
LAFE_TARGET_AVX512 void run_avx512(const Args<F>& p, int64_t u, double* s) {
    K::unit(p, u, s);
}
#endif

// Native doubles per vector register of each path (at most W).
template <int W, int S>
using PackFor = Pack<W, (S < W ? S : W)>;

template <template <class, class> class K, class F, int W>
UnitFn<F> pick_isa() {
#if LAFE_X86
    switch (isa()) {
        case Isa::Avx512: return &run_avx512<K<F, PackFor<W, 8>>, F>;
        case Isa::Avx2: return &run_avx2<K<F, PackFor<W, 4>>, F>;
        default: break;
    }
#endif
    return &run_generic<K<F, PackFor<W, 2>>, F>;
}

template <template <class, class> class K, class F>
UnitFn<F> pick(int W) {
    if (W == 4) return pick_isa<K, F, 4>();
    if (W == 8) return pick_isa<K, F, 8>();
    return pick_isa<K, F, 16>();
}

inline int lanes_for(int64_t C) { return C <= 4 ? 4 : C <= 8 ? 8 : 16; }

template <class F>
Args<F> make_args(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                  std::vector<double>& coef) {
    Args<F> p{};
    p.x = x;
    p.B = B;
    p.T = T;
    p.C = C;
    p.W = lanes_for(C);
    p.nblk = (C + p.W - 1) / p.W;
    coef.assign(static_cast<size_t>(p.nblk * 5 * p.W), 0.0);
    for (int64_t c = 0; c < C; ++c) {
        double* d = coef.data() + (c / p.W) * 5 * p.W + (c % p.W);
        d[0] = b[c * 3];
        d[p.W] = b[c * 3 + 1];
        d[2 * p.W] = b[c * 3 + 2];
        d[3 * p.W] = a[c * 2];
        d[4 * p.W] = a[c * 2 + 1];
    }
    p.coef = coef.data();
    return p;
}

template <class F>
void launch(UnitFn<F> fn, const Args<F>& p, size_t scratch, int num_threads) {
    const int64_t n = p.B * p.nblk;
    if (n <= 0) return;
    const int nt = static_cast<int>(std::min<int64_t>(resolve_threads(num_threads), n));
#pragma omp parallel num_threads(nt)
    {
        std::vector<double> buf(std::max<size_t>(scratch, 1));
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < n; ++u) fn(p, u, buf.data());
    }
}

// Gradient buffers for the backward kernels; reduces the per-unit partials
// in a fixed order (batch item ascending, channel block ascending).
template <class F>
struct GradBuffers {
    std::unique_ptr<double[]> gx_part;
    std::vector<double> gba_part;
    void attach(Args<F>& p, F* gx) {
        p.gx = gx;
        gba_part.assign(static_cast<size_t>(p.B * p.C * 5), 0.0);
        p.gba_part = gba_part.data();
        if (p.nblk > 1) {
            // every element is written by the units (no zero fill needed)
            gx_part.reset(new double[static_cast<size_t>(p.B * p.nblk * p.T)]);
            p.gx_part = gx_part.get();
        }
    }
    std::vector<double> gstd_part;
    void attach_std(Args<F>& p) {
        gstd_part.assign(static_cast<size_t>(p.B * p.C), 0.0);
        p.gstd_part = gstd_part.data();
    }
    // d/dstd[c]: the unit partials summed in batch order.
    void finish_std(const Args<F>& p, double* gstd) const {
        for (int64_t c = 0; c < p.C; ++c) {
            double s = 0.0;
            for (int64_t bi = 0; bi < p.B; ++bi) s += gstd_part[bi * p.C + c];
            gstd[c] = s;
        }
    }
    void finish(const Args<F>& p, double* gb, double* ga, int num_threads) {
        for (int64_t c = 0; c < p.C; ++c) {
            double s[5] = {0, 0, 0, 0, 0};
            for (int64_t bi = 0; bi < p.B; ++bi)
                for (int j = 0; j < 5; ++j) s[j] += gba_part[(bi * p.C + c) * 5 + j];
            for (int j = 0; j < 3; ++j) gb[c * 3 + j] = s[j];
            for (int j = 0; j < 2; ++j) ga[c * 2 + j] = s[3 + j];
        }
        if (p.nblk > 1) {
            const int64_t B = p.B, T = p.T, nblk = p.nblk;
            const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(resolve_threads(num_threads), B)));
            const double* part = gx_part.get();
            F* gx = p.gx;
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t bi = 0; bi < B; ++bi) {
                for (int64_t t = 0; t < T; ++t) {
                    double s = 0.0;
                    for (int64_t j = 0; j < nblk; ++j) s += part[(bi * nblk + j) * T + t];
                    gx[bi * T + t] = static_cast<F>(s);
                }
            }
        }
    }
};

}  // namespace

// ----------------------------------------------------------- public API ---

int64_t checkpoint_doubles(int64_t B, int64_t T, int64_t C) {
    const int64_t W = lanes_for(C), nblk = (C + W - 1) / W;
    return B * nblk * 2 * ((T + kTimeBlock - 1) / kTimeBlock) * W;
}

template <class F>
void forward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C, const F* zi,
             F* y, F* zf, int num_threads, double* checkpoints) {
    std::vector<double> coef;
    Args<F> p = make_args(x, B, T, b, a, C, coef);
    p.zi = zi;
    p.y = y;
    p.zf = zf;
    p.ck_out = checkpoints;
    const size_t bytes = static_cast<size_t>(B * C * T) * sizeof(F);
    advise_huge_pages(y, bytes);
    p.stream = bytes >= kStreamBytes;
    launch(pick<Forward, F>(p.W), p, 0, num_threads);
}

template <class F>
void backward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C, const F* zi,
              const F* gy, const F* gzf, F* gx, double* gb, double* ga, F* gzi, int num_threads,
              const double* checkpoints) {
    std::vector<double> coef;
    Args<F> p = make_args(x, B, T, b, a, C, coef);
    p.zi = zi;
    p.gy = gy;
    p.gzf = gzf;
    p.gzi = gzi;
    p.ck_in = checkpoints;
    GradBuffers<F> g;
    g.attach(p, gx);
    launch(pick<Backward, F>(p.W), p, scratch_backward(p.W, T, checkpoints == nullptr), num_threads);
    g.finish(p, gb, ga, num_threads);
}

namespace {
template <class F>
Args<F> make_env_args(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                      int64_t hop, double alpha, Rectify rectify, const double* noise_std,
                      uint64_t seed, std::vector<double>& coef, std::vector<double>& stdp) {
    Args<F> p = make_args(x, B, T, b, a, C, coef);
    p.hop = hop;
    p.frames = T / hop;
    p.alpha = alpha;
    p.rectify = rectify;
    p.seed = seed;
    if (noise_std) {
        stdp.assign(static_cast<size_t>(p.nblk * p.W), 0.0);
        std::copy(noise_std, noise_std + C, stdp.begin());  // lane c % W of block c / W
        p.noise_std = stdp.data();
    }
    return p;
}
}  // namespace

int64_t envelope_checkpoint_size(int64_t C, int64_t T, int64_t hop) {
    const int W = lanes_for(C);
    return ((C + W - 1) / W) * (T / hop) * 2 * W;
}

template <class F>
void envelope_forward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                      int64_t hop, double alpha, Rectify rectify, const double* noise_std,
                      uint64_t seed, F* out, double* ck, int num_threads) {
    std::vector<double> coef, stdp;
    Args<F> p = make_env_args(x, B, T, b, a, C, hop, alpha, rectify, noise_std, seed, coef, stdp);
    p.out = out;
    p.ck = ck;
    const size_t scratch = noise_std ? static_cast<size_t>(noise_rows(hop) * p.W) : 0;
    launch(pick<EnvForward, F>(p.W), p, scratch, num_threads);
}

template <class F>
void envelope_backward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                       int64_t hop, double alpha, Rectify rectify, const double* noise_std,
                       uint64_t seed, const double* ck, const F* gout, F* gx, double* gb,
                       double* ga, double* gstd, int num_threads) {
    std::vector<double> coef, stdp;
    Args<F> p = make_env_args(x, B, T, b, a, C, hop, alpha, rectify, noise_std, seed, coef, stdp);
    p.gout = gout;
    p.ck = const_cast<double*>(ck);  // read only in the backward
    GradBuffers<F> g;
    g.attach(p, gx);
    if (noise_std) g.attach_std(p);
    launch(pick<EnvBackward, F>(p.W), p,
           scratch_env_backward(p.W, ck ? 0 : p.frames, hop, noise_std != nullptr), num_threads);
    g.finish(p, gb, ga, num_threads);
    if (noise_std && gstd) g.finish_std(p, gstd);
}

void gaussian_noise(uint64_t seed, int64_t B, int64_t C, int64_t T, double* out, int num_threads) {
    if (B <= 0 || C <= 0) return;
    std::vector<double> coef, zeros(static_cast<size_t>(C * 3), 0.0), stdp;
    Args<double> p = make_args<double>(nullptr, B, T, zeros.data(), zeros.data(), C, coef);
    p.seed = seed;
    p.out = out;
    launch(pick<NoiseFill, double>(p.W), p, static_cast<size_t>(noise_rows(256) * p.W), num_threads);
}

const char* isa_name() {
    switch (isa()) {
        case Isa::Avx512: return "avx512";
        case Isa::Avx2: return "avx2";
        default: return "generic";
    }
}

#define LAFE_INSTANTIATE(F)                                                                       \
    template void forward<F>(const F*, int64_t, int64_t, const double*, const double*, int64_t,  \
                             const F*, F*, F*, int, double*);                                   \
    template void backward<F>(const F*, int64_t, int64_t, const double*, const double*, int64_t, \
                              const F*, const F*, const F*, F*, double*, double*, F*, int,      \
                              const double*);                                                   \
    template void envelope_forward<F>(const F*, int64_t, int64_t, const double*, const double*,  \
                                      int64_t, int64_t, double, Rectify, const double*, uint64_t, \
                                      F*, double*, int);                                        \
    template void envelope_backward<F>(const F*, int64_t, int64_t, const double*, const double*, \
                                       int64_t, int64_t, double, Rectify, const double*,          \
                                       uint64_t, const double*, const F*, F*, double*, double*,   \
                                       double*, int);

LAFE_INSTANTIATE(float)
LAFE_INSTANTIATE(double)

}  // namespace biquad
}  // namespace learnafe
