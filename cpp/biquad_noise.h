// The envelope op's input-referred noise inside the kernels: standard normal
// values (counter_rng.h, keyed by (seed, batch item, channel, sample)) of a
// unit's channels as rows of W doubles, for a whole range (fill_noise) or
// generated lazily one chunk ahead of the recursion (FrameNoise).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "biquad_recursion.h"
#include "counter_rng.h"

namespace learnafe {
namespace biquad {
namespace detail {

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

template <class V>
LAFE_INLINE int64_t fill_noise(const Unit& u, const NoiseKey<V>& key, int64_t t0,
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

// W noise values of one sample (float32 rows, see FrameNoise) as a Pack of
// doubles: one vcvtps2pd from memory per native vector (exact).
template <class P>
LAFE_INLINE P load_noise(const float* q) {
    P r;
    for (int n = 0; n < P::kN; ++n) r.p[n] = load_f32_as_f64<P::kS>(q + n * P::kS);
    return r;
}

// The noise of one frame (samples t0 .. t0 + n - 1 of a unit's W channels),
// generated lazily kNoiseGroups groups of 4 samples (one Philox counter per
// channel and group) at a time, one such chunk ahead of the recursion that
// consumes it: the recursion is a latency-bound chain that leaves most
// vector slots idle, and generating the next chunk in between lets the
// out-of-order core overlap the two instead of running a whole frame's
// generation and then its recursion.  Row r (W floats: the generator's
// float32 values as they are, converted to double by the consumer's load,
// load_noise) is sample 4 * (t0 / 4) + r, at most n + 6 rows; the values do
// not depend on when or in which chunk a group is generated.  Float rows
// halve the stores and loads of the noise against double rows and move the
// conversion into the load.
template <class V>
struct FrameNoise {
    static constexpr int W = V::kW;
    static constexpr int NS = noise_lanes<V>();
    static constexpr int K = kNoiseGroups;
    const NoiseKey<V>& key;
    const Unit& u;
    float* buf;
    int64_t j0, jn, jend;

    LAFE_INLINE FrameNoise(const NoiseKey<V>& k, const Unit& un, int64_t t0, int64_t n, float* b)
        : key(k), u(un), buf(b), j0(t0 / 4), jn(t0 / 4), jend((t0 + n + 3) / 4) {
        upto(j0 + 1);
    }
    // Row of sample t0 of the frame.
    LAFE_INLINE const float* rows(int64_t t0) const { return buf + (t0 - 4 * j0) * W; }

    template <int G>
    LAFE_INLINE void groups() {
        typedef typename rng::Lanes<NS>::vf vf;
        float* row = buf + (jn - j0) * 4 * W;
        for (int s = 0; s < W / (2 * NS); ++s) {
            vf o[G][4];
            rng::normals<NS, G>(key, static_cast<uint64_t>(u.bi), static_cast<uint64_t>(u.c0 + s * 2 * NS),
                                static_cast<uint64_t>(jn), o);
            for (int k = 0; k < G; ++k)
                for (int r = 0; r < 4; ++r) std::memcpy(row + (4 * k + r) * W + s * 2 * NS, &o[k][r], sizeof(vf));
        }
        jn += G;
    }
    // Generates at least the groups before group j (none past the frame):
    // whole chunks, single groups at the frame's end.
    LAFE_INLINE void upto(int64_t j) {
        const int64_t je = std::min(j, jend);
        while (jn < je) {
            if (jend - jn >= K) groups<K>();
            else groups<1>();
        }
    }
    // Before the recursion consumes the samples t .. t + kSpan - 1 (t a
    // frame start or kSpan after the previous call): those, and the next
    // chunk after them.
    static constexpr int64_t kSpan = 4 * K;
    LAFE_INLINE void before(int64_t t) { upto(t / 4 + 2 * K + 1); }
};

// The noisy recursion of a frame (samples t0 .. t0 + n - 1): step(t, row of
// sample t0 + t) for each sample in order, the noise generated a chunk
// ahead between spans of kSpan samples.  The spans keep the generator out
// of the per-sample loop, so that the compilers keep the recursion's state
// in registers across it (with the generator's call inside the per-sample
// loop they spilled and reloaded the state at every sample).
template <class V, class Step>
LAFE_INLINE void noisy_frame(FrameNoise<V>& gen, int64_t t0, int64_t n, Step&& step) {
    constexpr int W = V::kW;
    const float* nr = gen.rows(t0);
    for (int64_t t = 0; t < n;) {
        gen.before(t0 + t);
        const int64_t te = std::min<int64_t>(n, t + FrameNoise<V>::kSpan);
        for (; t < te; ++t) step(t, nr + t * W);
    }
}
// Standard normal noise n[b, c, t] (counter_rng.h) into p.out ([B, C, T]
// doubles, F = double), one unit = (batch item, channel block).
template <class F, class V>
struct NoiseFill {
    static LAFE_INLINE void unit(const NoiseArgs<F>& p, int64_t uid, double* scratch) {
        constexpr int W = V::kW;
        const Unit u = unit_of(p, uid);
        constexpr int64_t kChunk = 256;
        const NoiseKey<V> key(p.seed);
        for (int64_t t0 = 0; t0 < p.T; t0 += kChunk) {
            const int64_t n = std::min(kChunk, p.T - t0);
            const double* nr = scratch + fill_noise<V>(u, key, t0, n, scratch) * W;
            for (int l = 0; l < u.nc; ++l) {
                F* d = p.out + (u.bi * p.C + u.c0 + l) * p.T + t0;
                for (int64_t t = 0; t < n; ++t) d[t] = static_cast<F>(nr[t * W + l]);
            }
        }
    }
};
}  // namespace detail
}  // namespace biquad
}  // namespace learnafe
