// The adjoint by native vector, shared by the plain backward
// (Backward::adjoint_block_by_vector) and the envelope backward
// (EnvBackward::adjoint_frame_by_vector): a unit's W lanes are W / S native
// vectors of S doubles, and on the AVX2 and AVX-512 paths the adjoint runs
// one native vector at a time over a block of samples, so that one vector's
// adjoint state, coefficient-gradient accumulators and coefficients stay in
// registers (a whole 16-channel unit's state is four times AVX2's 16 ymm
// registers and spills).  Every lane runs the same operations in the same
// order as the all-lanes loop: results are bitwise the same.  lambda is
// stored per vector into a [n][W] buffer and summed over the channels
// afterwards in hsum's order (lambda_sums).
#pragma once

#include <cstdint>
#include <utility>

#include "biquad_recursion.h"
#include "biquad_simd.h"

namespace learnafe {
namespace biquad {
namespace detail {

// Whether a unit of V runs its adjoint by native vector: on the AVX2 and
// AVX-512 paths when the unit spans several native vectors.
template <class V>
constexpr bool kByVector = (V::kS == 4 || V::kS == 8) && V::kW > V::kS;

// Native vector q (lanes q * S .. q * S + S - 1) of a pack, as a pack of
// one vector.
template <class V>
using LanesOf = Pack<V::kS, V::kS>;

template <class V>
LAFE_INLINE LanesOf<V> lanes_of(const V& a, int q) {
    LanesOf<V> r;
    r.p[0] = a.p[q];
    return r;
}

template <class V>
LAFE_INLINE Coef<LanesOf<V>> lanes_of(const Coef<V>& k, int q) {
    Coef<LanesOf<V>> r;
    r.b0 = lanes_of(k.b0, q);
    r.b1 = lanes_of(k.b1, q);
    r.b2 = lanes_of(k.b2, q);
    r.a1 = lanes_of(k.a1, q);
    r.a2 = lanes_of(k.a2, q);
    return r;
}

// Native vectors q * N .. q * N + N - 1 of a pack (lanes q * N * S ..), as a
// pack of N vectors, and the inverse (the forward runs a unit in such groups
// on the AVX2 path: the coefficients and state of a whole unit do not fit in
// its 16 registers).
template <int N, class V>
LAFE_INLINE Pack<N * V::kS, V::kS> vectors_of(const V& a, int q) {
    Pack<N * V::kS, V::kS> r;
    for (int i = 0; i < N; ++i) r.p[i] = a.p[q * N + i];
    return r;
}

template <int N, class V>
LAFE_INLINE void set_vectors(V& a, int q, const Pack<N * V::kS, V::kS>& g) {
    for (int i = 0; i < N; ++i) a.p[q * N + i] = g.p[i];
}

template <int N, class V>
LAFE_INLINE Coef<Pack<N * V::kS, V::kS>> vectors_of(const Coef<V>& k, int q) {
    Coef<Pack<N * V::kS, V::kS>> r;
    r.b0 = vectors_of<N>(k.b0, q);
    r.b1 = vectors_of<N>(k.b1, q);
    r.b2 = vectors_of<N>(k.b2, q);
    r.a1 = vectors_of<N>(k.a1, q);
    r.a2 = vectors_of<N>(k.a2, q);
    return r;
}

// The adjoint state of a unit from its native vectors' states (adj[q]
// holds lanes q * S .. q * S + S - 1).
template <class V>
LAFE_INLINE Adjoint<V> join_adjoints(const Adjoint<LanesOf<V>>* adj) {
    Adjoint<V> r;
    for (int q = 0; q < V::kN; ++q) {
        r.gyp1.p[q] = adj[q].gyp1.p[0];
        r.gyp2.p[q] = adj[q].gyp2.p[0];
        r.lp1.p[q] = adj[q].lp1.p[0];
        r.lp2.p[q] = adj[q].lp2.p[0];
        r.gb0.p[q] = adj[q].gb0.p[0];
        r.gb1.p[q] = adj[q].gb1.p[0];
        r.gb2.p[q] = adj[q].gb2.p[0];
        r.ga1.p[q] = adj[q].ga1.p[0];
        r.ga2.p[q] = adj[q].ga2.p[0];
    }
    return r;
}

// Channel sums of lambda for many samples at once (16 lanes as two vectors of
// 8, the AVX-512 layout): the same halving tree as hsum (lane l + 8, then
// l + 4, l + 2, l + 1, so bitwise the same sums), but the shuffles of eight
// samples are shared: 15 additions and 14 shuffles per 8 samples instead of
// 32 and 24.  lam: [n][16] doubles; sums[t] for t < n.
template <class V>
constexpr bool kBatchedSum = V::kW == 16 && V::kS == 8;

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


// Channel sums of lambda ([n][W] rows, as the by-vector adjoint stores them):
// sums[t] = hsum(row t), batched on the AVX-512 16-lane layout.
template <class V>
LAFE_INLINE void lambda_sums(const double* lam, int64_t n, double* sums) {
    if constexpr (kBatchedSum<V>) {
        channel_sums<V>(lam, n, sums);
    } else {
        for (int64_t t = 0; t < n; ++t) sums[t] = hsum(V::load(lam + t * V::kW));
    }
}

}  // namespace detail
}  // namespace biquad
}  // namespace learnafe
