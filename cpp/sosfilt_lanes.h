// Lane layout of the fused cascade kernels (sosfilt_cascade.cpp): the launch
// arguments, a unit's lanes, the coefficient/state buffers and the block
// transposes between time-contiguous rows and lane-major scratch.  Internal to
// the cascade kernels; included by sosfilt_cascade.cpp only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "biquad_dispatch.h"
#include "sosfilt_cascade.h"

namespace learnafe {
namespace sosfilt {
namespace lanes {

using biquad::detail::broadcast_load;
using biquad::detail::F4;
using biquad::detail::F8;
using biquad::detail::F8u;
using biquad::detail::fmadd;
using biquad::detail::fnmadd;
using biquad::detail::hsum;
using biquad::detail::join4;
using biquad::detail::pack_to_f32;
using biquad::detail::store8;
using biquad::detail::stream_store;
using biquad::detail::transpose4_lanes;
using biquad::detail::pack_from_vec;
using biquad::detail::pack_to_vec;
using biquad::detail::transpose;
using biquad::detail::VecOf;

constexpr int64_t kBlock = 64;  // samples per time block (a multiple of every W and of kTile)
constexpr int64_t kTile = 8;    // samples per float32 transpose tile
// Forward outputs of at least this size are written with streaming stores.
constexpr size_t kStreamBytes = size_t(8) << 20;

// Arguments of a launch (biquad::detail::launch reads B and nblk).
template <class F>
struct Args {
    Cascade<F> c;
    int64_t B = 0, nblk = 0;
    F* y = nullptr;
    F* zf = nullptr;
    const F* gy = nullptr;
    const F* gzf = nullptr;
    F* gu = nullptr;              // written directly (Cu = C, or Cu = 1 with one block)
    double* gu_part = nullptr;    // Cu = 1 with several blocks: [B, nblk, T]
    double* gba_part = nullptr;   // [B, C, S, 5] per-row coefficient gradients
    bool stream = false;          // forward output written with streaming stores
    double* ck = nullptr;         // block checkpoints [B * nblk units][nb][S][2][W] or null
    F* gzi = nullptr;
};

// Lanes per block: 4 for up to 4 channels, else 8 (the same on every path,
// so lane sums round identically everywhere).
inline int lanes_for(int64_t C) { return C <= 4 ? 4 : 8; }

// The unit's lanes: batch item, first channel, valid lanes.
struct Lanes {
    int64_t i, c0;
    int nl;
};

template <class F>
Lanes lanes_of(const Args<F>& p, int64_t unit, int W) {
    Lanes L;
    L.i = unit / p.nblk;
    L.c0 = (unit % p.nblk) * W;
    L.nl = static_cast<int>(std::min<int64_t>(W, p.c.C - L.c0));
    return L;
}

// coef[(s * 5 + k) * W + l]: b0, b1, b2, a1, a2 of lane l (zero on padding lanes).
template <class F>
void load_coefficients(const Cascade<F>& c, const Lanes& L, int W, double* coef) {
    const int64_t S = c.S, g = c.G == 1 ? 0 : L.i;
    std::fill(coef, coef + S * 5 * W, 0.0);
    for (int l = 0; l < L.nl; ++l) {
        const int64_t row = g * c.C + L.c0 + l;
        for (int64_t s = 0; s < S; ++s) {
            for (int k = 0; k < 3; ++k) coef[(s * 5 + k) * W + l] = c.b[(row * S + s) * 3 + k];
            for (int k = 0; k < 2; ++k) coef[(s * 5 + 3 + k) * W + l] = c.a[(row * S + s) * 2 + k];
        }
    }
}

// st[(s * 2 + k) * W + l] from a [B, C, S, 2] state (zero if null or padding).
template <class F>
void load_state(const F* z, const Cascade<F>& c, const Lanes& L, int W, double* st) {
    const int64_t S = c.S;
    std::fill(st, st + S * 2 * W, 0.0);
    if (!z) return;
    for (int l = 0; l < L.nl; ++l) {
        const F* q = z + (L.i * c.C + L.c0 + l) * S * 2;
        for (int64_t j = 0; j < S * 2; ++j) st[j * W + l] = static_cast<double>(q[j]);
    }
}

template <class F>
void store_state(F* z, const Cascade<F>& c, const Lanes& L, int W, const double* st) {
    if (!z) return;
    const int64_t S = c.S;
    for (int l = 0; l < L.nl; ++l) {
        F* q = z + (L.i * c.C + L.c0 + l) * S * 2;
        for (int64_t j = 0; j < S * 2; ++j) q[j] = static_cast<F>(st[j * W + l]);
    }
}

// dst[t * stride + l] = rows[l][t0 + t] for t < n, l < W (doubles).  float32
// rows go through tiles of 4 channels x 8 samples: one 32-byte load per
// channel, the in-lane 4 x 4 transpose, and each half converted to 4 doubles
// of one sample; float64 rows through W x W register transposes.
template <class F, class P>
LAFE_INLINE void gather(const F* const* rows, int64_t t0, int64_t n, double* dst, int64_t stride = P::kW) {
    constexpr int W = P::kW;
    typedef typename VecOf<double, 4>::U D4u;
    typedef typename VecOf<double, 4>::V D4;
    int64_t t = 0;
    if constexpr (std::is_same<F, float>::value) {
        for (; t + kTile <= n; t += kTile) {
            for (int g = 0; g < W / 4; ++g) {
                F8 r[4];
                for (int i = 0; i < 4; ++i) r[i] = *reinterpret_cast<const F8u*>(rows[4 * g + i] + t0 + t);
                transpose4_lanes(r);
                for (int j = 0; j < 4; ++j) {
                    const F4 lo = __builtin_shufflevector(r[j], r[j], 0, 1, 2, 3);
                    const F4 hi = __builtin_shufflevector(r[j], r[j], 4, 5, 6, 7);
                    *reinterpret_cast<D4u*>(dst + (t + j) * stride + 4 * g) = __builtin_convertvector(lo, D4);
                    *reinterpret_cast<D4u*>(dst + (t + j + 4) * stride + 4 * g) = __builtin_convertvector(hi, D4);
                }
            }
        }
    } else {
        typedef typename VecOf<F, W>::V V;
        typedef typename VecOf<F, W>::U U;
        for (; t + W <= n; t += W) {
            V r[W];
            for (int l = 0; l < W; ++l) r[l] = *reinterpret_cast<const U*>(rows[l] + t0 + t);
            transpose<W, V>(r);
            for (int j = 0; j < W; ++j) pack_from_vec<F, W, P::kS>(r[j]).store(dst + (t + j) * stride);
        }
    }
    for (; t < n; ++t)
        for (int l = 0; l < W; ++l) dst[t * stride + l] = static_cast<double>(rows[l][t0 + t]);
}

// rows[l][t + j] = stage[j * W + l] for j < 8, l < nl (float32 rows, t a
// multiple of 8): tiles of 4 channels x 8 samples transposed in registers,
// one 32-byte store per channel (streaming when kStream: rows aligned to 32
// bytes; one vmovntps ymm on the AVX2 and AVX-512 paths, S >= 4 doubles per
// register, two 16-byte SSE2 ones on the baseline).
template <int W, int S, bool kStream>
LAFE_INLINE void store_tile(const float* stage, float* const* rows, int nl, int64_t t) {
    for (int g = 0; 4 * g < nl; ++g) {
        F8 r[4];
        for (int j = 0; j < 4; ++j) r[j] = join4(stage + j * W + 4 * g, stage + (j + 4) * W + 4 * g);
        transpose4_lanes(r);
        for (int j = 0; j < 4 && 4 * g + j < nl; ++j) {
            if constexpr (kStream && S < 4) stream_store<S>(rows[4 * g + j] + t, r[j]);
            else store8<kStream>(rows[4 * g + j] + t, r[j]);
        }
    }
}

// dst[t * stride + l] = row[t0 + t] for every lane (one input shared by
// every channel): a broadcast per sample instead of a transpose of W copies.
template <class F, class P>
LAFE_INLINE void gather_shared(const F* row, int64_t t0, int64_t n, double* dst, int64_t stride = P::kW) {
    constexpr int W = P::kW;
    for (int64_t t = 0; t < n; ++t) {
        const double v = static_cast<double>(row[t0 + t]);
        for (int l = 0; l < W; ++l) dst[t * stride + l] = v;
    }
}

// The block's input of a unit into lanes: broadcast when the input is shared (Cu = 1).
template <class F, class P>
LAFE_INLINE void gather_input(const Cascade<F>& c, const F* const* rows, int64_t t0, int64_t n, double* dst,
                              int64_t stride = P::kW) {
    if (c.Cu == 1) gather_shared<F, P>(rows[0], t0, n, dst, stride);
    else gather<F, P>(rows, t0, n, dst, stride);
}

// xd[t] = row[t0 + t] for t < n (the shared input of a block as doubles,
// broadcast into the lanes by the first section group as it reads it).
template <class F>
LAFE_INLINE void shared_block(const F* row, int64_t t0, int64_t n, double* xd) {
    for (int64_t t = 0; t < n; ++t) xd[t] = static_cast<double>(row[t0 + t]);
}

// rows[l][t0 + t] = src[t * W + l] for t < n and l < nl.
template <class F, class P>
LAFE_INLINE void scatter(const double* src, F* const* rows, int nl, int64_t t0, int64_t n) {
    constexpr int W = P::kW;
    int64_t t = 0;
    if constexpr (std::is_same<F, float>::value) {
        alignas(32) float stage[kTile * W];
        for (; t + kTile <= n; t += kTile) {
            for (int j = 0; j < kTile; ++j) pack_to_f32(stage + j * W, P::load(src + (t + j) * W));
            store_tile<W, P::kS, false>(stage, rows, nl, t0 + t);
        }
    } else {
        typedef typename VecOf<F, W>::V V;
        typedef typename VecOf<F, W>::U U;
        for (; t + W <= n; t += W) {
            V r[W];
            for (int j = 0; j < W; ++j) r[j] = pack_to_vec<F, W, P::kS>(P::load(src + (t + j) * W));
            transpose<W, V>(r);
            for (int l = 0; l < nl; ++l) *reinterpret_cast<U*>(rows[l] + t0 + t) = r[l];
        }
    }
    for (; t < n; ++t)
        for (int l = 0; l < nl; ++l) rows[l][t0 + t] = static_cast<F>(src[t * W + l]);
}

// Five packs per section, sections [s0, s0 + NS) of a [S][5][W] buffer: the
// coefficients (b0, b1, b2, a1, a2), or the coefficient-gradient sums.
template <int NS, class P>
LAFE_INLINE void load_fives(const double* base, int64_t s0, P* v0, P* v1, P* v2, P* v3, P* v4) {
    constexpr int W = P::kW;
    for (int s = 0; s < NS; ++s) {
        const double* q = base + (s0 + s) * 5 * W;
        v0[s] = P::load(q);
        v1[s] = P::load(q + W);
        v2[s] = P::load(q + 2 * W);
        v3[s] = P::load(q + 3 * W);
        v4[s] = P::load(q + 4 * W);
    }
}

// Two packs per section of a [S][2][W] buffer: the states (z1, z2) or the adjoints (G1, G2).
template <int NS, class P>
LAFE_INLINE void load_pairs(const double* base, int64_t s0, P* first, P* second) {
    constexpr int W = P::kW;
    for (int s = 0; s < NS; ++s) {
        first[s] = P::load(base + ((s0 + s) * 2) * W);
        second[s] = P::load(base + ((s0 + s) * 2 + 1) * W);
    }
}

template <int NS, class P>
LAFE_INLINE void store_pairs(double* base, int64_t s0, const P* first, const P* second) {
    constexpr int W = P::kW;
    for (int s = 0; s < NS; ++s) {
        first[s].store(base + ((s0 + s) * 2) * W);
        second[s].store(base + ((s0 + s) * 2 + 1) * W);
    }
}


// Input rows of a unit (padding lanes repeat lane 0: their coefficients are zero).
template <class F>
void input_rows(const Cascade<F>& c, const Lanes& L, int W, const F** rows) {
    for (int l = 0; l < W; ++l) {
        const int64_t ch = c.Cu == 1 ? 0 : L.c0 + std::min(l, L.nl - 1);
        rows[l] = c.u + (L.i * c.Cu + ch) * c.T;
    }
}

template <class F, class Q>
void signal_rows(Q* base, const Cascade<F>& c, const Lanes& L, int W, Q** rows) {
    for (int l = 0; l < W; ++l) rows[l] = base + (L.i * c.C + L.c0 + std::min(l, L.nl - 1)) * c.T;
}


}  // namespace lanes
}  // namespace sosfilt
}  // namespace learnafe
