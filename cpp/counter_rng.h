// Counter-based Gaussian noise: Philox4x32-10 + Box-Muller, vectorised.
//
// Generator: Philox4x32-10 of J. K. Salmon, M. A. Moraes, R. O. Dror and
// D. E. Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11 (the
// Random123 library; also cuRAND's default).  A keyed bijection of a 128-bit
// counter: 10 rounds of two 32x32 -> 64-bit multiplications (0xD2511F53,
// 0xCD9E8D57) with the Weyl key schedule (0x9E3779B9, 0xBB67AE85).  It
// reproduces Random123's known-answer vectors (tested).
//
// Noise of (seed, batch item b, channel c, sample t), the definition every
// path and the Python reference share:
//
//   j = t / 4 (integer division), r = t % 4
//   (r0, r1, r2, r3) = Philox4x32-10(counter = (j mod 2^32, c, b, j / 2^32),
//                                     key = (seed mod 2^32, seed / 2^32))
//   u(w) = (w + 0.5) * 2^-32                      (in (0, 1), never 0 or 1)
//   rho = sqrt(-2 ln u(r0)),  theta = 2 pi u(r1)  -> n[4j] = rho cos theta,
//                                                     n[4j+1] = rho sin theta
//   rho' = sqrt(-2 ln u(r2)), theta' = 2 pi u(r3) -> n[4j+2], n[4j+3] likewise
//
// (Box-Muller, G. E. P. Box and M. E. Muller, Ann. Math. Statist. 29, 1958.)
// Each n is standard normal up to the 32-bit resolution of the uniforms
// (|n| <= sqrt(64 ln 2) = 6.66); samples of different (seed, b, c, t) come
// from different counters, so they are independent (as far as Philox is a
// good generator).  ln, sin and cos are computed here by fdlibm's polynomials
// (Sun Microsystems, e_log.c, k_sin.c, k_cos.c; within about 1 ulp) written
// on vectors with every operation spelled out, so that the value does not
// depend on the vector width, the instruction set or the compiler's libm:
// the file must be compiled without FMA contraction (-ffp-contract=off).
//
// Everything is header-only and `always_inline`, to be inlined into the
// instruction-set-specific kernels (see biquad_filterbank.cpp).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__GNUC__)
#define LAFE_RNG_INLINE inline __attribute__((always_inline))
#else
#define LAFE_RNG_INLINE inline
#endif

namespace learnafe {
namespace rng {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

// Scalar Philox4x32-10 (the reference the vector code is tested against).
inline void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; ++r) {
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

// S lanes of 64-bit integers / doubles as one GCC vector (S = native doubles
// per register of the instruction set the caller is compiled for).
template <int S>
struct Lanes {
    typedef uint64_t vu __attribute__((vector_size(8 * S)));
    typedef int64_t vi __attribute__((vector_size(8 * S)));
    typedef double vd __attribute__((vector_size(8 * S)));
};

template <class VD, class VU>
LAFE_RNG_INLINE VD as_double(VU v) {
    VD r;
    std::memcpy(&r, &v, sizeof(r));
    return r;
}
template <class VU, class VD>
LAFE_RNG_INLINE VU as_bits(VD v) {
    VU r;
    std::memcpy(&r, &v, sizeof(r));
    return r;
}

// ln(u) for 0 < u < 2^1023 normal (fdlibm e_log.c: u = 2^k m, m in
// [sqrt(2)/2, sqrt(2)), f = m - 1, s = f / (2 + f), log(1 + f) = f - hfsq +
// s (hfsq + R(s^2))).
template <int S>
LAFE_RNG_INLINE typename Lanes<S>::vd vlog(typename Lanes<S>::vd u) {
    typedef typename Lanes<S>::vd vd;
    typedef typename Lanes<S>::vu vu;
    typedef typename Lanes<S>::vi vi;
    const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
                 Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
                 Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                 Lg7 = 1.479819860511658591e-01;
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double two52 = 4503599627370496.0;
    const vu bits = as_bits<vu>(u);
    // exponent field as a double, exactly: 2^52 + e - 2^52
    const vd ebias = as_double<vd>((bits >> 52) | 0x4330000000000000ull) - two52;
    vd m = as_double<vd>((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
    const vi big = m > 1.4142135623730951;  // m in [1, 2): halve the upper part
    m = big ? m * 0.5 : m;
    const vd k = (ebias - 1023.0) + (big ? vd{} + 1.0 : vd{});
    const vd f = m - 1.0;
    const vd hfsq = 0.5 * f * f;
    const vd s = f / (2.0 + f);
    const vd z = s * s;
    const vd w = z * z;
    const vd t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    const vd t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    const vd R = t2 + t1;
    return k * ln2_hi - ((hfsq - (s * (hfsq + R) + k * ln2_lo)) - f);
}

// (cos(2 pi u), sin(2 pi u)) for u in [0, 1): u = (q + f) / 4 with q the
// nearest quarter turn, x = f pi / 2 in [-pi/4, pi/4], fdlibm's kernels for
// sin x and cos x, then the quarter-turn rotation.
template <int S>
LAFE_RNG_INLINE void vsincos_turns(typename Lanes<S>::vd u, typename Lanes<S>::vd& c,
                                   typename Lanes<S>::vd& s) {
    typedef typename Lanes<S>::vd vd;
    typedef typename Lanes<S>::vu vu;
    typedef typename Lanes<S>::vi vi;
    const double S1 = -1.66666666666666324348e-01, S2 = 8.33333333332248946124e-03,
                 S3 = -1.98412698298579493134e-04, S4 = 2.75573137070700676789e-06,
                 S5 = -2.50507602534068634195e-08, S6 = 1.58969099521155010221e-10;
    const double C1 = 4.16666666666666019037e-02, C2 = -1.38888888888741095749e-03,
                 C3 = 2.48015872894767294178e-05, C4 = -2.75573143513906633035e-07,
                 C5 = 2.08757232129817482790e-09, C6 = -1.13596475577881948265e-11;
    const double two52 = 4503599627370496.0, half_pi = 1.57079632679489655800e+00;
    const vd q = u * 4.0;               // exact
    const vd t = q + two52;             // round to the nearest integer
    const vu quad = as_bits<vu>(t) & 3u;  // quarter turns mod 4
    const vd x = (q - (t - two52)) * half_pi;
    const vd z = x * x;
    const vd sn = x + x * z * (S1 + z * (S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)))));
    const vd cs = (1.0 - 0.5 * z) + z * z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
    const vi odd = (quad & 1u) != 0;
    const vi neg_c = ((quad + 1u) & 2u) != 0;  // quarter turns 1, 2
    const vi neg_s = (quad & 2u) != 0;         // quarter turns 2, 3
    const vd cc = odd ? sn : cs;
    const vd ss = odd ? cs : sn;
    c = neg_c ? -cc : cc;
    s = neg_s ? -ss : ss;
}

// sqrt lane by lane (correctly rounded, so identical on every path).
template <int S>
LAFE_RNG_INLINE typename Lanes<S>::vd vsqrt(typename Lanes<S>::vd v) {
    typename Lanes<S>::vd r;
    for (int l = 0; l < S; ++l) r[l] = __builtin_sqrt(v[l]);
    return r;
}

// A 32-bit word (held in a 64-bit lane) -> u = (w + 0.5) 2^-32, exactly.
template <int S>
LAFE_RNG_INLINE typename Lanes<S>::vd uniform(typename Lanes<S>::vu w) {
    typedef typename Lanes<S>::vd vd;
    const double two52 = 4503599627370496.0;
    const vd d = as_double<vd>(w | 0x4330000000000000ull) - two52;  // = w
    return (d + 0.5) * 2.3283064365386962890625e-10;
}

// Philox4x32-10 on S lanes (32-bit words in 64-bit lanes); the key is the
// same for every lane.
template <int S>
LAFE_RNG_INLINE void philox_lanes(typename Lanes<S>::vu& c0, typename Lanes<S>::vu& c1,
                                  typename Lanes<S>::vu& c2, typename Lanes<S>::vu& c3,
                                  uint32_t k0, uint32_t k1) {
    typedef typename Lanes<S>::vu vu;
    const uint64_t lo = 0xFFFFFFFFull;
    for (int r = 0; r < 10; ++r) {
        const vu p0 = c0 * uint64_t(kPhiloxM0);  // c0 < 2^32: the exact 64-bit product
        const vu p1 = c2 * uint64_t(kPhiloxM1);
        const vu n0 = (p1 >> 32) ^ c1 ^ uint64_t(k0);
        const vu n2 = (p0 >> 32) ^ c3 ^ uint64_t(k1);
        c1 = p1 & lo;
        c3 = p0 & lo;
        c0 = n0;
        c2 = n2;
        k0 += kPhiloxW0;
        k1 += kPhiloxW1;
    }
}

// Standard normals n[4j .. 4j+3] of channels c .. c+S-1 (lane l = channel
// c + l) of batch item b: out[r] holds sample 4j + r.
template <int S>
LAFE_RNG_INLINE void normals4(uint64_t seed, uint64_t b, uint64_t c, uint64_t j,
                              typename Lanes<S>::vd out[4]) {
    typedef typename Lanes<S>::vu vu;
    typedef typename Lanes<S>::vd vd;
    vu ch;
    for (int l = 0; l < S; ++l) ch[l] = (c + uint64_t(l)) & 0xFFFFFFFFull;
    vu c0 = vu{} + (j & 0xFFFFFFFFull), c1 = ch, c2 = vu{} + (b & 0xFFFFFFFFull),
       c3 = vu{} + (j >> 32);
    philox_lanes<S>(c0, c1, c2, c3, uint32_t(seed), uint32_t(seed >> 32));
    const vd rho0 = vsqrt<S>(-2.0 * vlog<S>(uniform<S>(c0)));
    const vd rho1 = vsqrt<S>(-2.0 * vlog<S>(uniform<S>(c2)));
    vd cs0, sn0, cs1, sn1;
    vsincos_turns<S>(uniform<S>(c1), cs0, sn0);
    vsincos_turns<S>(uniform<S>(c3), cs1, sn1);
    out[0] = rho0 * cs0;
    out[1] = rho0 * sn0;
    out[2] = rho1 * cs1;
    out[3] = rho1 * sn1;
}

}  // namespace rng
}  // namespace learnafe
