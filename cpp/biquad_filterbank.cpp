// Biquad filter bank kernels (see biquad_filterbank.h for the model).
//
// Structure of this file:
//  * Lanes<W>: a GCC/Clang vector of W doubles, one lane per channel.  Every
//    per-sample operation below is written once on these vectors, so each
//    step of the recursion is a handful of vector FMAs across W channels.
//  * Unit kernels (Forward, Backward, EnvForward, EnvBackward): the work for
//    one (batch item, channel block), always inlined into...
//  * ...ISA wrappers compiled with target attributes (AVX-512, AVX2+FMA,
//    baseline), chosen once at run time, so the binary runs on any x86-64
//    (and anything else through the baseline path).
//  * Compiled with -ffp-contract=off (CMakeLists.txt): every product and sum
//    is rounded as written, so all code paths (block and tail loops, AVX-512,
//    AVX2, baseline) give bitwise identical results.
//  * launch(): OpenMP loop over units with per-thread scratch.  A unit is
//    always computed by a single thread in a fixed order, so the result does
//    not depend on the thread count.
#include "biquad_filterbank.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "parallel.h"

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

// ---------------------------------------------------------------- lanes ---

template <int W>
struct Lanes;
template <>
struct Lanes<4> {
    typedef double V __attribute__((vector_size(32)));
};
template <>
struct Lanes<8> {
    typedef double V __attribute__((vector_size(64)));
};
template <>
struct Lanes<16> {
    typedef double V __attribute__((vector_size(128)));
};

template <int W>
LAFE_INLINE typename Lanes<W>::V vload(const double* p) {
    typename Lanes<W>::V v;
    std::memcpy(&v, p, sizeof(v));
    return v;
}

template <int W>
LAFE_INLINE void vstore(double* p, typename Lanes<W>::V v) {
    std::memcpy(p, &v, sizeof(v));
}

template <int W>
LAFE_INLINE typename Lanes<W>::V vzero() {
    typename Lanes<W>::V v = {};
    return v;
}

template <class T, int N>
struct VecOf {
    typedef T V __attribute__((vector_size(sizeof(T) * N)));
};

// Conversion between the double lanes and the I/O type F (float or double).
template <class F, int W>
LAFE_INLINE typename VecOf<F, W>::V to_io(typename Lanes<W>::V v) {
    if constexpr (std::is_same<F, double>::value)
        return v;
    else
        return __builtin_convertvector(v, typename VecOf<F, W>::V);
}

template <class F, int W>
LAFE_INLINE typename Lanes<W>::V from_io(typename VecOf<F, W>::V v) {
    if constexpr (std::is_same<F, double>::value)
        return v;
    else
        return __builtin_convertvector(v, typename Lanes<W>::V);
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
    // gradients: gx [B, T] (or per-block partials in double when nblk > 1),
    // per-(batch item, channel) partials of gb/ga in double.
    F* gx;
    double* gx_part;
    double* gba_part;  // [B, C, 5]: gb0 gb1 gb2 ga1 ga2
};

template <int W>
struct Coef {
    typedef typename Lanes<W>::V V;
    V b0, b1, b2, a1, a2;
    LAFE_INLINE explicit Coef(const double* c)
        : b0(vload<W>(c)),
          b1(vload<W>(c + W)),
          b2(vload<W>(c + 2 * W)),
          a1(vload<W>(c + 3 * W)),
          a2(vload<W>(c + 4 * W)) {}
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

// The filter recursion for n samples starting at xs, starting from state
// (v1, v2) = (v[-1], v[-2]).  If vout is given, stores v[-2], v[-1], v[0..n)
// at vout[0..n+2) (W doubles each).
template <int W, class F>
LAFE_INLINE void advance(const Coef<W>& k, const F* xs, int64_t n, typename Lanes<W>::V& v1,
                         typename Lanes<W>::V& v2, double* vout) {
    typedef typename Lanes<W>::V V;
    if (vout) {
        vstore<W>(vout, v2);
        vstore<W>(vout + W, v1);
    }
    for (int64_t t = 0; t < n; ++t) {
        const double xt = static_cast<double>(xs[t]);
        V v = (xt - k.a2 * v2) - k.a1 * v1;
        v2 = v1;
        v1 = v;
        if (vout) vstore<W>(vout + (t + 2) * W, v);
    }
}

// One reverse-time step of the adjoint at sample m, given g = dL/dy[m] and
// the delay line (v[m], v[m-1], v[m-2]).  Carries gy[m+1], gy[m+2] and
// lambda[m+1], lambda[m+2]; lambda = dL/dv (total), which is also dL/dx per
// channel.  Returns lambda[m].
template <int W>
struct Adjoint {
    typedef typename Lanes<W>::V V;
    V gyp1 = vzero<W>(), gyp2 = vzero<W>(), lp1 = vzero<W>(), lp2 = vzero<W>();
    V gb0 = vzero<W>(), gb1 = vzero<W>(), gb2 = vzero<W>(), ga1 = vzero<W>(), ga2 = vzero<W>();

    LAFE_INLINE V step(const Coef<W>& k, V g, V extra, V vm, V vm1, V vm2) {
        V gvd = k.b0 * g + k.b1 * gyp1 + k.b2 * gyp2 + extra;
        V lam = (gvd - k.a2 * lp2) - k.a1 * lp1;
        gb0 += g * vm;
        gb1 += g * vm1;
        gb2 += g * vm2;
        ga1 -= lam * vm1;
        ga2 -= lam * vm2;
        gyp2 = gyp1;
        gyp1 = g;
        lp2 = lp1;
        lp1 = lam;
        return lam;
    }

    template <class F>
    LAFE_INLINE void store_coef_grads(const Args<F>& p, const Unit& u) const {
        double t[5][W];
        std::memcpy(t[0], &gb0, sizeof(t[0]));
        std::memcpy(t[1], &gb1, sizeof(t[1]));
        std::memcpy(t[2], &gb2, sizeof(t[2]));
        std::memcpy(t[3], &ga1, sizeof(t[3]));
        std::memcpy(t[4], &ga2, sizeof(t[4]));
        for (int l = 0; l < u.nc; ++l) {
            double* d = p.gba_part + ((u.bi * p.C) + u.c0 + l) * 5;
            for (int j = 0; j < 5; ++j) d[j] = t[j][l];
        }
    }
};

template <int W, class F>
LAFE_INLINE void load_state(const F* s, const Unit& u, int64_t C, typename Lanes<W>::V& v1,
                            typename Lanes<W>::V& v2) {
    double t1[W] = {}, t2[W] = {};
    if (s) {
        for (int l = 0; l < u.nc; ++l) {
            const F* q = s + (u.bi * C + u.c0 + l) * 2;
            t1[l] = static_cast<double>(q[0]);
            t2[l] = static_cast<double>(q[1]);
        }
    }
    v1 = vload<W>(t1);
    v2 = vload<W>(t2);
}

template <int W, class F>
LAFE_INLINE void store_state(F* s, const Unit& u, int64_t C, typename Lanes<W>::V v1,
                             typename Lanes<W>::V v2) {
    double t1[W], t2[W];
    vstore<W>(t1, v1);
    vstore<W>(t2, v2);
    for (int l = 0; l < u.nc; ++l) {
        F* q = s + (u.bi * C + u.c0 + l) * 2;
        q[0] = static_cast<F>(t1[l]);
        q[1] = static_cast<F>(t2[l]);
    }
}

// dL/dx for samples m0 .. m0 + n - 1 of a unit: lam holds n rows of W lanes
// (per-channel adjoints); the channel sum is taken in lane order 0, 1, ..
// (W x W blocks are transposed so that W samples are summed at once).
template <class F, int W>
LAFE_INLINE void store_gx_block(const Args<F>& p, const Unit& u, int64_t m0, int64_t n,
                                const double* lam) {
    typedef typename Lanes<W>::V V;
    const bool partial = p.nblk > 1;
    double* dpart = partial ? p.gx_part + (u.bi * p.nblk + u.blk) * p.T + m0 : nullptr;
    F* dio = partial ? nullptr : p.gx + u.bi * p.T + m0;
    int64_t t = 0;
    for (; t + W <= n; t += W) {
        V r[W];
        for (int l = 0; l < W; ++l) r[l] = vload<W>(lam + (t + l) * W);
        transpose<W>(r);
        V acc = r[0];
        for (int l = 1; l < W; ++l) acc += r[l];
        if (partial) {
            vstore<W>(dpart + t, acc);
        } else {
            const typename VecOf<F, W>::V o = to_io<F, W>(acc);
            std::memcpy(dio + t, &o, sizeof(o));
        }
    }
    for (; t < n; ++t) {
        const double* q = lam + t * W;
        double acc = q[0];
        for (int l = 1; l < W; ++l) acc += q[l];
        if (partial)
            dpart[t] = acc;
        else
            dio[t] = static_cast<F>(acc);
    }
}

// ------------------------------------------------------------- kernels ---

constexpr int64_t kTimeBlock = 128;  // samples per checkpoint block (multiple of 16)

// Scratch (doubles per thread) each kernel needs.
inline size_t scratch_backward(int W, int64_t T) {
    const int64_t nb = (T + kTimeBlock - 1) / kTimeBlock;
    return static_cast<size_t>((2 * nb + (kTimeBlock + 2) + 2 * kTimeBlock) * W);
}
inline size_t scratch_env_backward(int W, int64_t frames, int64_t hop) {
    return static_cast<size_t>((2 * frames + (hop + 2) + hop) * W);
}

template <class F, int W>
struct Forward {
    static LAFE_INLINE void unit(const Args<F>& p, int64_t uid, double*) {
        typedef typename Lanes<W>::V V;
        typedef typename VecOf<F, W>::V VF;
        const Unit u = unit_of(p, uid);
        const Coef<W> k(p.coef + u.blk * 5 * W);
        const int64_t T = p.T;
        V v1, v2;
        load_state<W>(p.zi, u, p.C, v1, v2);
        const F* xb = p.x + u.bi * T;
        F* yb = p.y + (u.bi * p.C + u.c0) * T;  // channel l at yb + l * T
        int64_t t0 = 0;
        // W samples x W channels at a time, transposed in registers so that
        // each channel gets one contiguous W-sample store.
        for (; t0 + W <= T; t0 += W) {
            VF rows[W];
            for (int s = 0; s < W; ++s) {
                const double xt = static_cast<double>(xb[t0 + s]);
                const V v = (xt - k.a2 * v2) - k.a1 * v1;
                const V y = k.b0 * v + k.b1 * v1 + k.b2 * v2;
                v2 = v1;
                v1 = v;
                rows[s] = to_io<F, W>(y);
            }
            transpose<W>(rows);
            for (int l = 0; l < u.nc; ++l) std::memcpy(yb + l * T + t0, &rows[l], sizeof(VF));
        }
        for (; t0 < T; ++t0) {
            const double xt = static_cast<double>(xb[t0]);
            const V v = (xt - k.a2 * v2) - k.a1 * v1;
            const V y = k.b0 * v + k.b1 * v1 + k.b2 * v2;
            v2 = v1;
            v1 = v;
            double yl[W];
            vstore<W>(yl, y);
            for (int l = 0; l < u.nc; ++l) yb[l * T + t0] = static_cast<F>(yl[l]);
        }
        if (p.zf) store_state<W>(p.zf, u, p.C, v1, v2);
    }
};

// dL/dy of a unit for samples t0 .. t0 + n - 1 as n rows of W lanes (double).
template <class F, int W>
LAFE_INLINE void load_gy_block(const Args<F>& p, const Unit& u, int64_t t0, int64_t n, double* gyb) {
    typedef typename VecOf<F, W>::V VF;
    const F* gb = p.gy + (u.bi * p.C + u.c0) * p.T + t0;  // channel l at gb + l * T
    int64_t t = 0;
    for (; t + W <= n; t += W) {
        VF r[W] = {};
        for (int l = 0; l < u.nc; ++l) std::memcpy(&r[l], gb + l * p.T + t, sizeof(VF));
        transpose<W>(r);
        for (int s = 0; s < W; ++s) vstore<W>(gyb + (t + s) * W, from_io<F, W>(r[s]));
    }
    for (; t < n; ++t) {
        double* q = gyb + t * W;
        for (int l = 0; l < W; ++l) q[l] = l < u.nc ? static_cast<double>(gb[l * p.T + t]) : 0.0;
    }
}

template <class F, int W>
struct Backward {
    static LAFE_INLINE void unit(const Args<F>& p, int64_t uid, double* scratch) {
        typedef typename Lanes<W>::V V;
        const Unit u = unit_of(p, uid);
        const Coef<W> k(p.coef + u.blk * 5 * W);
        const int64_t T = p.T;
        const int64_t nb = (T + kTimeBlock - 1) / kTimeBlock;
        double* ck = scratch;                       // [nb][2][W]: (v1, v2) at block starts
        double* vbuf = ck + 2 * nb * W;             // [kTimeBlock + 2][W]: v[t0-2 ..]
        double* gyb = vbuf + (kTimeBlock + 2) * W;  // [kTimeBlock][W]: dL/dy
        double* lamb = gyb + kTimeBlock * W;        // [kTimeBlock][W]: dL/dx per channel
        const F* xb = p.x + u.bi * T;

        V v1, v2;
        load_state<W>(p.zi, u, p.C, v1, v2);
        for (int64_t j = 0; j < nb; ++j) {
            vstore<W>(ck + 2 * j * W, v1);
            vstore<W>(ck + (2 * j + 1) * W, v2);
            const int64_t t0 = j * kTimeBlock;
            advance<W>(k, xb + t0, std::min(kTimeBlock, T - t0), v1, v2, nullptr);
        }

        V gz0, gz1;
        load_state<W>(p.gzf, u, p.C, gz0, gz1);
        const V zero = vzero<W>();
        Adjoint<W> adj;
        for (int64_t j = nb - 1; j >= 0; --j) {
            const int64_t t0 = j * kTimeBlock;
            const int64_t n = std::min(kTimeBlock, T - t0);
            V c1 = vload<W>(ck + 2 * j * W), c2 = vload<W>(ck + (2 * j + 1) * W);
            advance<W>(k, xb + t0, n, c1, c2, vbuf);
            load_gy_block<F, W>(p, u, t0, n, gyb);
            for (int64_t t = n - 1; t >= 0; --t) {
                const int64_t m = t0 + t;
                const V extra = (m == T - 1) ? gz0 : (m == T - 2) ? gz1 : zero;
                const V lam = adj.step(k, vload<W>(gyb + t * W), extra, vload<W>(vbuf + (t + 2) * W),
                                       vload<W>(vbuf + (t + 1) * W), vload<W>(vbuf + t * W));
                vstore<W>(lamb + t * W, lam);
            }
            store_gx_block<F, W>(p, u, t0, n, lamb);
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
            store_state<W>(p.gzi, u, p.C, gm1, gm2);
        }
    }
};

template <int W>
LAFE_INLINE typename Lanes<W>::V rectify(typename Lanes<W>::V y, Rectify r) {
    if (r == Rectify::Square) return y * y;
    return y < 0 ? -y : y;
}

// d rectify / dy times g (|y|: sign(y) with sign(0) = 0, as torch.abs).
template <int W>
LAFE_INLINE typename Lanes<W>::V rectify_adjoint(typename Lanes<W>::V y, typename Lanes<W>::V g,
                                                 Rectify r) {
    typedef typename Lanes<W>::V V;
    if (r == Rectify::Square) return 2.0 * y * g;
    const V zero = vzero<W>();
    return y > 0 ? g : (y < 0 ? -g : zero);
}

template <class F, int W>
struct EnvForward {
    static LAFE_INLINE void unit(const Args<F>& p, int64_t uid, double*) {
        typedef typename Lanes<W>::V V;
        const Unit u = unit_of(p, uid);
        const Coef<W> k(p.coef + u.blk * 5 * W);
        const double alpha = p.alpha;
        V v1 = vzero<W>(), v2 = vzero<W>(), e = vzero<W>();
        const F* xb = p.x + u.bi * p.T;
        for (int64_t f = 0; f < p.frames; ++f) {
            const F* xs = xb + f * p.hop;
            if (p.rectify == Rectify::Abs) {
                for (int64_t t = 0; t < p.hop; ++t) {
                    const double xt = static_cast<double>(xs[t]);
                    V v = (xt - k.a2 * v2) - k.a1 * v1;
                    V y = k.b0 * v + k.b1 * v1 + k.b2 * v2;
                    v2 = v1;
                    v1 = v;
                    e += alpha * (rectify<W>(y, Rectify::Abs) - e);
                }
            } else {
                for (int64_t t = 0; t < p.hop; ++t) {
                    const double xt = static_cast<double>(xs[t]);
                    V v = (xt - k.a2 * v2) - k.a1 * v1;
                    V y = k.b0 * v + k.b1 * v1 + k.b2 * v2;
                    v2 = v1;
                    v1 = v;
                    e += alpha * (rectify<W>(y, Rectify::Square) - e);
                }
            }
            double el[W];
            vstore<W>(el, e);
            for (int l = 0; l < u.nc; ++l)
                p.out[(u.bi * p.C + u.c0 + l) * p.frames + f] = static_cast<F>(el[l]);
        }
    }
};

template <class F, int W>
struct EnvBackward {
    static LAFE_INLINE void unit(const Args<F>& p, int64_t uid, double* scratch) {
        typedef typename Lanes<W>::V V;
        const Unit u = unit_of(p, uid);
        const Coef<W> k(p.coef + u.blk * 5 * W);
        const int64_t hop = p.hop, nf = p.frames;
        const double alpha = p.alpha, decay = 1.0 - p.alpha;
        double* ck = scratch;               // [nf][2][W]
        double* vbuf = ck + 2 * nf * W;     // [hop + 2][W]
        double* lamb = vbuf + (hop + 2) * W;  // [hop][W]
        const F* xb = p.x + u.bi * p.T;

        V v1 = vzero<W>(), v2 = vzero<W>();
        for (int64_t f = 0; f < nf; ++f) {
            vstore<W>(ck + 2 * f * W, v1);
            vstore<W>(ck + (2 * f + 1) * W, v2);
            advance<W>(k, xb + f * hop, hop, v1, v2, nullptr);
        }
        // Samples after the last frame do not reach the output.
        if (p.nblk > 1)
            std::fill(p.gx_part + (u.bi * p.nblk + u.blk) * p.T + nf * hop,
                      p.gx_part + (u.bi * p.nblk + u.blk + 1) * p.T, 0.0);
        else
            std::fill(p.gx + u.bi * p.T + nf * hop, p.gx + (u.bi + 1) * p.T, F(0));

        const V zero = vzero<W>();
        Adjoint<W> adj;
        V ge = zero;  // dL/de[m + 1]
        for (int64_t f = nf - 1; f >= 0; --f) {
            const int64_t t0 = f * hop;
            V c1 = vload<W>(ck + 2 * f * W), c2 = vload<W>(ck + (2 * f + 1) * W);
            advance<W>(k, xb + t0, hop, c1, c2, vbuf);
            double gol[W] = {};
            for (int l = 0; l < u.nc; ++l)
                gol[l] = static_cast<double>(p.gout[(u.bi * p.C + u.c0 + l) * nf + f]);
            const V go = vload<W>(gol);
            for (int64_t t = hop - 1; t >= 0; --t) {
                const V vm = vload<W>(vbuf + (t + 2) * W);
                const V vm1 = vload<W>(vbuf + (t + 1) * W);
                const V vm2 = vload<W>(vbuf + t * W);
                ge = decay * ge;
                if (t == hop - 1) ge += go;
                const V y = k.b0 * vm + k.b1 * vm1 + k.b2 * vm2;
                const V g = rectify_adjoint<W>(y, alpha * ge, p.rectify);
                vstore<W>(lamb + t * W, adj.step(k, g, zero, vm, vm1, vm2));
            }
            store_gx_block<F, W>(p, u, t0, hop, lamb);
        }
        adj.store_coef_grads(p, u);
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

template <template <class, int> class K, class F, int W>
UnitFn<F> pick_isa() {
#if LAFE_X86
    switch (isa()) {
        case Isa::Avx512: return &run_avx512<K<F, W>, F>;
        case Isa::Avx2: return &run_avx2<K<F, W>, F>;
        default: break;
    }
#endif
    return &run_generic<K<F, W>, F>;
}

template <template <class, int> class K, class F>
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
#pragma omp for schedule(static)
        for (int64_t u = 0; u < n; ++u) fn(p, u, buf.data());
    }
}

// Gradient buffers for the backward kernels; reduces the per-unit partials
// in a fixed order (batch item ascending, channel block ascending).
template <class F>
struct GradBuffers {
    std::vector<double> gx_part, gba_part;
    void attach(Args<F>& p, F* gx) {
        p.gx = gx;
        gba_part.assign(static_cast<size_t>(p.B * p.C * 5), 0.0);
        p.gba_part = gba_part.data();
        if (p.nblk > 1) {
            gx_part.assign(static_cast<size_t>(p.B * p.nblk * p.T), 0.0);
            p.gx_part = gx_part.data();
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
            const double* part = gx_part.data();
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

template <class F>
void forward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C, const F* zi,
             F* y, F* zf, int num_threads) {
    std::vector<double> coef;
    Args<F> p = make_args(x, B, T, b, a, C, coef);
    p.zi = zi;
    p.y = y;
    p.zf = zf;
    advise_huge_pages(y, static_cast<size_t>(B * C * T) * sizeof(F));
    launch(pick<Forward, F>(p.W), p, 0, num_threads);
}

template <class F>
void backward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C, const F* zi,
              const F* gy, const F* gzf, F* gx, double* gb, double* ga, F* gzi, int num_threads) {
    std::vector<double> coef;
    Args<F> p = make_args(x, B, T, b, a, C, coef);
    p.zi = zi;
    p.gy = gy;
    p.gzf = gzf;
    p.gzi = gzi;
    GradBuffers<F> g;
    g.attach(p, gx);
    launch(pick<Backward, F>(p.W), p, scratch_backward(p.W, T), num_threads);
    g.finish(p, gb, ga, num_threads);
}

template <class F>
void envelope_forward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                      int64_t hop, double alpha, Rectify rectify, F* out, int num_threads) {
    std::vector<double> coef;
    Args<F> p = make_args(x, B, T, b, a, C, coef);
    p.hop = hop;
    p.frames = T / hop;
    p.alpha = alpha;
    p.rectify = rectify;
    p.out = out;
    launch(pick<EnvForward, F>(p.W), p, 0, num_threads);
}

template <class F>
void envelope_backward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                       int64_t hop, double alpha, Rectify rectify, const F* gout, F* gx, double* gb,
                       double* ga, int num_threads) {
    std::vector<double> coef;
    Args<F> p = make_args(x, B, T, b, a, C, coef);
    p.hop = hop;
    p.frames = T / hop;
    p.alpha = alpha;
    p.rectify = rectify;
    p.gout = gout;
    GradBuffers<F> g;
    g.attach(p, gx);
    launch(pick<EnvBackward, F>(p.W), p, scratch_env_backward(p.W, p.frames, hop), num_threads);
    g.finish(p, gb, ga, num_threads);
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
                             const F*, F*, F*, int);                                            \
    template void backward<F>(const F*, int64_t, int64_t, const double*, const double*, int64_t, \
                              const F*, const F*, const F*, F*, double*, double*, F*, int);     \
    template void envelope_forward<F>(const F*, int64_t, int64_t, const double*, const double*,  \
                                      int64_t, int64_t, double, Rectify, F*, int);              \
    template void envelope_backward<F>(const F*, int64_t, int64_t, const double*, const double*, \
                                       int64_t, int64_t, double, Rectify, const F*, F*, double*,  \
                                       double*, int);

LAFE_INSTANTIATE(float)
LAFE_INSTANTIATE(double)

}  // namespace biquad
}  // namespace learnafe
