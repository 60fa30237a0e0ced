// Counter-based Gaussian noise: Philox4x32-7 + Box-Muller, vectorised.
//
// Generator: Philox4x32 of J. K. Salmon, M. A. Moraes, R. O. Dror and
// D. E. Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11 (the
// Random123 library), with 7 rounds: a keyed bijection of a 128-bit counter,
// rounds of two 32x32 -> 64-bit multiplications (0xD2511F53, 0xCD9E8D57)
// with the Weyl key schedule (0x9E3779B9, 0xBB67AE85).  Philox4x32-7 passes
// TestU01's BigCrush (Salmon et al.; their 10-round default adds a safety
// margin) and costs 7/10 of it; the code reproduces Random123's known-answer
// vectors for 7 and 10 rounds (tested).
//
// Noise of (seed, batch item b, channel c, sample t), the definition every
// path and the Python reference share:
//
//   j = t / 4 (integer division)
//   (w0, w1, w2, w3) = Philox4x32-7(counter = (j mod 2^32, c, b, j / 2^32),
//                                    key = (seed mod 2^32, seed / 2^32))
//   u1 = float32(((w0 >> 1) | 1) * 2^-31)   in (0, 1]  (rounded to float32)
//   u2 = (w1 >> 8) * 2^-24                  in [0, 1)  (exact)
//   rho = sqrt(-2 ln u1),  theta = 2 pi u2  -> n[4j] = rho cos theta,
//                                              n[4j+1] = rho sin theta
//   (w2, w3) likewise                       -> n[4j+2], n[4j+3]
//
// (Box-Muller, G. E. P. Box and M. E. Muller, Ann. Math. Statist. 29, 1958.)
// The transform runs in float32 (16 lanes per AVX-512 register).  ln uses a
// degree-4 correction polynomial and cos a degree-6 one, fitted here (see
// vlogf, vsincos_turns) instead of Cephes' degree 8: each computed n is
// within 1.24e-6 rho of the exact rho cos theta / rho sin theta (largest
// error over 6.7e7 random pairs and the extreme words, against float64
// libm; the test holds it to 2e-6 + 2e-6 |n|).  A relative error e moves
// the distribution function by at most about 0.25 e, i.e. 3e-7: a
// Kolmogorov-Smirnov test would need some 1e13 samples to see it, so n is
// standard normal for every statistical purpose, up to the resolution of
// the uniforms (|n| <= sqrt(62 ln 2) = 6.56; the tail beyond has probability
// 5e-11).  Samples of different (seed, b, c, t) come from different
// counters, so they are independent (as far as Philox is a good
// generator).  The polynomials are written on vectors with every operation
// spelled out, so the value does not depend on the vector width, the
// instruction set or the libm: the file must be compiled without FMA
// contraction (-ffp-contract=off).
//
// Everything is header-only and `always_inline`, to be inlined into the
// instruction-set-specific kernels (see biquad_filterbank.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>  // declares the x86 vector builtins (used by mul_lo32 below)
#endif

#if defined(__GNUC__)
#define LAFE_RNG_INLINE inline __attribute__((always_inline))
#else
#define LAFE_RNG_INLINE inline
#endif

namespace learnafe {
namespace rng {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

// Rounds of the Philox variant the noise uses (Philox4x32-7; see the top).
constexpr int kPhiloxRounds = 7;

// Scalar Philox4x32-R (the reference the vector code is tested against).
inline void philox4x32(const uint32_t ctr[4], const uint32_t key[2], int rounds, uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < rounds; ++r) {
        const uint64_t p0 = uint64_t(kPhiloxM0) * c0, p1 = uint64_t(kPhiloxM1) * c2;
        const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
        c1 = uint32_t(p1);
        c3 = uint32_t(p0);
        c0 = n0;
        c2 = n2;
        k0 += kPhiloxW0;
        k1 += kPhiloxW1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

// S lanes of 64-bit integers (one Philox word per lane) and, in the same
// register size, 2S lanes of 32-bit integers / floats (the Box-Muller
// transform); S = native doubles per register of the instruction set the
// caller is compiled for.
template <int S>
struct Lanes {
    typedef uint64_t vu __attribute__((vector_size(8 * S)));
    typedef uint32_t vu32 __attribute__((vector_size(8 * S)));
    typedef int32_t vi32 __attribute__((vector_size(8 * S)));
    typedef float vf __attribute__((vector_size(8 * S)));
};

template <class To, class From>
LAFE_RNG_INLINE To bit_cast(From v) {
    static_assert(sizeof(To) == sizeof(From), "bit_cast of different sizes");
    To r;
    std::memcpy(&r, &v, sizeof(r));
    return r;
}

// Every function below works on K independent vectors in lock step (each
// step written as a loop over k that the compiler unrolls), so that K
// dependency chains are interleaved in the instruction stream: the
// polynomials are latency-bound, and interleaving is what keeps the vector
// units busy.  The value of each lane does not depend on K.
#define LAFE_RNG_EACH(K) _Pragma("GCC unroll 16") for (int k = 0; k < (K); ++k)

// ln(u) for normal u > 0 in float32, in the form of Cephes logf (S. L.
// Moshier): u = 2^e m, m in [sqrt(2)/2, sqrt(2)), x = m - 1,
// ln u = x - x^2/2 + x^3 P(x) + e ln 2 (ln 2 split in two), with P of degree
// 4 instead of Cephes' 8: coefficients fitted here to the minimax error of
// ln(1 + x) - x + x^2/2 on [sqrt(2)/2 - 1, sqrt(2) - 1] (Lawson's iteration),
// 3.8e-7 absolute on ln m, so ln u to 1.1e-6 relative (|ln u| >= 0.35
// wherever m != 1 + x with |x| small) and sqrt(-2 ln u) to 5.4e-7.
template <int S, int K>
LAFE_RNG_INLINE void vlogf(const typename Lanes<S>::vf* u, typename Lanes<S>::vf* out) {
    typedef typename Lanes<S>::vf vf;
    typedef typename Lanes<S>::vu32 vu32;
    typedef typename Lanes<S>::vi32 vi32;
    vf e[K], x[K], z[K], y[K];
    LAFE_RNG_EACH(K) {
        const vu32 bits = bit_cast<vu32>(u[k]);
        e[k] = __builtin_convertvector(bit_cast<vi32>(bits >> 23u) - 126, vf);  // u = 2^e m, m in [0.5, 1)
        const vf m = bit_cast<vf>((bits & 0x007FFFFFu) | 0x3F000000u);
        const vi32 low = m < 0.707106781186547524f;
        e[k] = low ? e[k] - 1.0f : e[k];
        x[k] = low ? (m + m) - 1.0f : m - 1.0f;
    }
    LAFE_RNG_EACH(K) z[k] = x[k] * x[k];
    LAFE_RNG_EACH(K) y[k] = 1.1708033829927444E-1f * x[k] - 1.8496914207935333E-1f;
    LAFE_RNG_EACH(K) y[k] = y[k] * x[k] + 2.0493811368942261E-1f;
    LAFE_RNG_EACH(K) y[k] = y[k] * x[k] - 2.4936866760253906E-1f;
    LAFE_RNG_EACH(K) y[k] = y[k] * x[k] + 3.3317431807518005E-1f;
    LAFE_RNG_EACH(K) y[k] = y[k] * x[k] * z[k];
    LAFE_RNG_EACH(K) y[k] = y[k] + -2.12194440e-4f * e[k];
    LAFE_RNG_EACH(K) y[k] = y[k] + -0.5f * z[k];
    LAFE_RNG_EACH(K) out[k] = (x[k] + y[k]) + 0.693359375f * e[k];
}

// (cos(2 pi u), sin(2 pi u)) for u in [0, 1) in float32: u = (q + f) / 4
// with q the nearest quarter turn, x = f pi / 2 in [-pi/4, pi/4], Cephes'
// sinf polynomial on x (degree 7, 4e-9 relative) and cos x = 1 - x^2/2 +
// x^4 (c1 + c2 x^2) with c1, c2 fitted here to the minimax error on
// [-pi/4, pi/4] (6.7e-8 absolute, about one float32 ulp of 1; Cephes has one
// more term), then the quarter-turn rotation.
template <int S, int K>
LAFE_RNG_INLINE void vsincos_turns(const typename Lanes<S>::vf* u, typename Lanes<S>::vf* c,
                                   typename Lanes<S>::vf* s) {
    typedef typename Lanes<S>::vf vf;
    typedef typename Lanes<S>::vu32 vu32;
    typedef typename Lanes<S>::vi32 vi32;
    const float round = 12582912.0f;  // 1.5 * 2^23: q + round rounds q to an integer
    vf x[K], z[K], sn[K], cs[K];
    vu32 quad[K];
    LAFE_RNG_EACH(K) {
        const vf q = u[k] * 4.0f;  // exact
        const vf t = q + round;
        quad[k] = bit_cast<vu32>(t) & 3u;  // quarter turns mod 4
        x[k] = (q - (t - round)) * 1.57079632679489661923f;
    }
    LAFE_RNG_EACH(K) z[k] = x[k] * x[k];
    LAFE_RNG_EACH(K) sn[k] = -1.9515295891E-4f * z[k] + 8.3321608736E-3f;
    LAFE_RNG_EACH(K) cs[k] = -1.3652447378262877E-3f * z[k] + 4.1661277413368225E-2f;
    LAFE_RNG_EACH(K) sn[k] = sn[k] * z[k] - 1.6666654611E-1f;
    LAFE_RNG_EACH(K) sn[k] = sn[k] * z[k] * x[k] + x[k];
    LAFE_RNG_EACH(K) cs[k] = cs[k] * z[k] * z[k] - 0.5f * z[k] + 1.0f;
    LAFE_RNG_EACH(K) {
        const vi32 odd = (quad[k] & 1u) != 0u;
        const vi32 neg_c = ((quad[k] + 1u) & 2u) != 0u;  // quarter turns 1, 2
        const vi32 neg_s = (quad[k] & 2u) != 0u;         // quarter turns 2, 3
        const vf cc = odd ? sn[k] : cs[k];
        const vf ss = odd ? cs[k] : sn[k];
        c[k] = neg_c ? -cc : cc;
        s[k] = neg_s ? -ss : ss;
    }
}

// The Philox round keys of a seed, (k0, k1) after r bumps (r = 0 .. R-1),
// each broadcast to S lanes (so the rounds read them as memory operands).
template <int S>
struct PhiloxKey {
    typedef typename Lanes<S>::vu vu;
    vu k0[kPhiloxRounds], k1[kPhiloxRounds];
    explicit PhiloxKey(uint64_t seed) {
        uint32_t a = uint32_t(seed), b = uint32_t(seed >> 32);
        for (int r = 0; r < kPhiloxRounds; ++r, a += kPhiloxW0, b += kPhiloxW1) {
            k0[r] = vu{} + uint64_t(a);
            k1[r] = vu{} + uint64_t(b);
        }
    }
};

// The 64-bit products of the low 32-bit halves of the lanes of a and m (the
// high halves are ignored): one vpmuludq / pmuludq per register on x86 (the
// compilers would otherwise expand the 64-bit lane multiply, into shifts
// and adds on AVX2 and vpmullq on AVX-512), exact integer arithmetic
// everywhere, so the value is the same on every path.
template <int S>
LAFE_RNG_INLINE typename Lanes<S>::vu mul_lo32(typename Lanes<S>::vu a, typename Lanes<S>::vu m) {
    typedef typename Lanes<S>::vu vu;
#if defined(__x86_64__) && defined(__GNUC__)
    if constexpr (S == 8) {
        typedef int v16si __attribute__((vector_size(64)));
        typedef long long v8di __attribute__((vector_size(64)));
        return bit_cast<vu>(__builtin_ia32_pmuludq512_mask(bit_cast<v16si>(a), bit_cast<v16si>(m), v8di{},
                                                           static_cast<unsigned char>(0xFF)));
    } else if constexpr (S == 4) {
        typedef int v8si __attribute__((vector_size(32)));
        return bit_cast<vu>(__builtin_ia32_pmuludq256(bit_cast<v8si>(a), bit_cast<v8si>(m)));
    } else if constexpr (S == 2) {
        typedef int v4si __attribute__((vector_size(16)));
        return bit_cast<vu>(__builtin_ia32_pmuludq128(bit_cast<v4si>(a), bit_cast<v4si>(m)));
    }
#endif
    const vu lo = vu{} + 0xFFFFFFFFull;
    return (a & lo) * (m & lo);
}

// Philox4x32-R (R = kPhiloxRounds) on K x S lanes (32-bit words in the low
// halves of 64-bit lanes; the high halves hold leftovers that no step reads:
// the multiplier reads the low halves only, and the words leave through
// join_words, which takes the low halves); the key is the same for every
// lane.  c[k][i] is word i of the counters of vector k.
template <int S, int K>
LAFE_RNG_INLINE void philox_lanes(typename Lanes<S>::vu (*c)[4], const PhiloxKey<S>& key) {
    typedef typename Lanes<S>::vu vu;
    const vu m0 = vu{} + uint64_t(kPhiloxM0), m1 = vu{} + uint64_t(kPhiloxM1);
#pragma GCC unroll 10
    for (int r = 0; r < kPhiloxRounds; ++r) {
        LAFE_RNG_EACH(K) {
            const vu p0 = mul_lo32<S>(c[k][0], m0);  // the exact 64-bit product of the low words
            const vu p1 = mul_lo32<S>(c[k][2], m1);
            const vu n0 = (p1 >> 32) ^ c[k][1] ^ key.k0[r];
            const vu n2 = (p0 >> 32) ^ c[k][3] ^ key.k1[r];
            c[k][1] = p1;
            c[k][3] = p0;
            c[k][0] = n0;
            c[k][2] = n2;
        }
    }
}

// The low 32 bits of the lanes of a and b, in order: 2S 32-bit lanes.
template <int S, std::size_t... I>
LAFE_RNG_INLINE typename Lanes<S>::vu32 join_words(typename Lanes<S>::vu a, typename Lanes<S>::vu b,
                                                   std::index_sequence<I...>) {
    typedef typename Lanes<S>::vu32 vu32;
    return __builtin_shufflevector(bit_cast<vu32>(a), bit_cast<vu32>(b), (2 * I)...);
}

// Box-Muller of two words per lane: (rho cos theta, rho sin theta) with
// rho = sqrt(-2 ln u1), u1 = ((w1 >> 1) | 1) 2^-31 in (0, 1] (rounded to
// float32), theta = 2 pi u2, u2 = (w2 >> 8) 2^-24 in [0, 1).
template <int S, int K>
LAFE_RNG_INLINE void box_muller(const typename Lanes<S>::vu32* w1, const typename Lanes<S>::vu32* w2,
                                typename Lanes<S>::vf* n0, typename Lanes<S>::vf* n1) {
    typedef typename Lanes<S>::vf vf;
    typedef typename Lanes<S>::vi32 vi32;
    vf u1[K], u2[K], lg[K], c[K], s[K];
    LAFE_RNG_EACH(K) {
        u1[k] = __builtin_convertvector(bit_cast<vi32>((w1[k] >> 1u) | 1u), vf) * 4.656612873077392578125e-10f;
        u2[k] = __builtin_convertvector(bit_cast<vi32>(w2[k] >> 8u), vf) * 5.9604644775390625e-08f;
    }
    vlogf<S, K>(u1, lg);
    vsincos_turns<S, K>(u2, c, s);
    LAFE_RNG_EACH(K) {
        const vf v = -2.0f * lg[k];
        vf rho;
        for (int l = 0; l < 2 * S; ++l) rho[l] = __builtin_sqrtf(v[l]);  // correctly rounded
        n0[k] = rho * c[k];
        n1[k] = rho * s[k];
    }
}

// (0, 1, .., S-1) as 64-bit lanes.
template <int S, std::size_t... I>
LAFE_RNG_INLINE typename Lanes<S>::vu lane_index(std::index_sequence<I...>) {
    return typename Lanes<S>::vu{uint64_t(I)...};
}

// Standard normals of channels c .. c+2S-1 (lane l = channel c + l) of batch
// item b for the K groups of samples j .. j+K-1: out[k][r] holds sample
// 4 (j + k) + r.
template <int S, int K>
LAFE_RNG_INLINE void normals(const PhiloxKey<S>& key, uint64_t b, uint64_t c, uint64_t j,
                             typename Lanes<S>::vf (*out)[4]) {
    typedef typename Lanes<S>::vu vu;
    typedef typename Lanes<S>::vu32 vu32;
    vu w[2 * K][4] = {};
    const vu iota = lane_index<S>(std::make_index_sequence<S>());
    const vu ch[2] = {(iota + c) & 0xFFFFFFFFull, (iota + (c + uint64_t(S))) & 0xFFFFFFFFull};
    LAFE_RNG_EACH(2 * K) {
        const uint64_t jj = j + uint64_t(k / 2);
        w[k][0] = vu{} + (jj & 0xFFFFFFFFull);
        w[k][1] = ch[k % 2];
        w[k][2] = vu{} + (b & 0xFFFFFFFFull);
        w[k][3] = vu{} + (jj >> 32);
    }
    philox_lanes<S, 2 * K>(w, key);
    const auto idx = std::make_index_sequence<2 * S>();
    vu32 r[4][K];
    for (int i = 0; i < 4; ++i) LAFE_RNG_EACH(K) r[i][k] = join_words<S>(w[2 * k][i], w[2 * k + 1][i], idx);
    typename Lanes<S>::vf n[4][K];
    box_muller<S, K>(r[0], r[1], n[0], n[1]);
    box_muller<S, K>(r[2], r[3], n[2], n[3]);
    for (int i = 0; i < 4; ++i) LAFE_RNG_EACH(K) out[k][i] = n[i][k];
}

#undef LAFE_RNG_EACH

}  // namespace rng
}  // namespace learnafe
