// Recursion primitives of the biquad kernels, written once on packs
// (biquad_simd.h): the coefficients of a channel block, the unit of work,
// one step of the all-pole recursion and of the FIR part, runs of the
// recursion (with stored states or checkpoints), one reverse-time step of
// the adjoint, the filter state in and out of [B, C, 2] buffers, and the
// envelope's rectifier with its adjoint.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "biquad_args.h"
#include "biquad_simd.h"

namespace learnafe {
namespace biquad {
namespace detail {

constexpr int64_t kTimeBlock = 128;  // samples per checkpoint block (multiple of 16)

template <class V>
struct Coef {
    V b0, b1, b2, a1, a2;
    Coef() = default;
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
LAFE_INLINE Unit unit_of(const Bank<F>& p, int64_t u) {
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
    LAFE_INLINE void store_coef_grads(const Bank<F>& p, const GradOut<F>& g, const Unit& u) const {
        constexpr int W = V::kW;
        double t[5][W];
        gb0.store(t[0]);
        gb1.store(t[1]);
        gb2.store(t[2]);
        ga1.store(t[3]);
        ga2.store(t[4]);
        for (int l = 0; l < u.nc; ++l) {
            double* d = g.gba_part + ((u.bi * p.C) + u.c0 + l) * 5;
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
LAFE_INLINE void store_gx_block(const Bank<F>& p, const GradOut<F>& g, const Unit& u, int64_t m0,
                                int64_t n, const double* sums) {
    if (p.nblk > 1) {
        std::memcpy(g.gx_part + (u.bi * p.nblk + u.blk) * p.T + m0, sums, sizeof(double) * n);
    } else {
        F* d = g.gx + u.bi * p.T + m0;
        for (int64_t t = 0; t < n; ++t) d[t] = static_cast<F>(sums[t]);
    }
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

}  // namespace detail
}  // namespace biquad
}  // namespace learnafe
