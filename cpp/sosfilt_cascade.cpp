// The fused cascade kernels of sosfilt_cascade.h.
//
// A unit is one block of W lanes (W consecutive channels of one batch item);
// every lane is an independent signal.  Time runs in blocks of kBlock
// samples: the block's input is transposed (in registers, 4 x 8 float32
// tiles) into lane-major scratch, or, when every channel filters the same
// input (Cu = 1), converted to double once and broadcast into the lanes by
// the first section group as it reads it; every section group runs over the
// block with its state in registers, and the last one writes float32 output
// rows itself: each sample is rounded into a staging tile that is transposed
// in registers and stored every 8 samples (streaming stores for outputs of
// 8 MB and more), so the output never passes through double scratch
// (float64 outputs go through it and a W x W transpose).  Sections run in groups of
// 4, 2 or 1 (compile-time sizes), so that the states and coefficients of a
// group stay in registers while consecutive samples of different sections
// overlap in the pipeline.
//
// Per sample and section (direct form II transposed, as scipy):
//     y  = b0 x + z1
//     z1 = (b1 x + z2) - a1 y
//     z2 = b2 x - a2 y
// with explicit fused multiply-adds (the file is compiled with
// -ffp-contract=off), identical on every path.
//
// Backward: the adjoint of the recursion run backwards in time.  With G1, G2
// the adjoints of the state after a sample and gin the adjoint of the
// section's output from downstream:
//     gy = gin - a1 G1 - a2 G2,   gx = b0 gy + b1 G1 + b2 G2,
//     db += (gy, G1, G2) x,       da -= (G1, G2) y,
//     G1 <- gy,                   G2 <- G1,
// and gx is the downstream adjoint of the previous section.  A first pass
// runs the forward recursion and keeps the states at every block start; the
// second pass, block by block from the end, restores the block's state,
// recomputes the inputs of every section for the block into an L1-resident
// buffer (in the forward's section groups, so that the recompute runs at the
// forward's rate), transposes the block's output gradient in (float32 tiles)
// and runs the adjoint of every section over the buffer.
#include "sosfilt_cascade.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "biquad_dispatch.h"
#include "parallel.h"
#include "sosfilt_lanes.h"

namespace learnafe {
namespace sosfilt {
namespace {

using namespace lanes;  // the lane layout of sosfilt_lanes.h

// Where a section group reads its input: lanes of a buffer (in[t * is]), or
// one shared input per sample broadcast into the lanes (xd[t]).
template <class P>
struct LaneIn {
    const double* q;
    int64_t is;
    LAFE_INLINE P operator()(int64_t t) const { return P::load(q + t * is); }
};
template <class P>
struct SharedIn {
    const double* xd;
    LAFE_INLINE P operator()(int64_t t) const { return broadcast_load<P::kW, P::kS>(xd + t); }
};

// Where a section group writes its output: put(t, j, y) per sample (j = t
// mod kTile), tile(t, m) after the m <= kTile samples from t.  LaneOut: lanes
// of a buffer, out[t * os]; RowOut: the float32 output rows, rounded per
// sample into a staging tile that is transposed in registers and stored
// every kTile samples (so the output is never written as doubles); NoOut:
// nowhere (the group's states, or its kept signals, are what is wanted).
template <class P>
struct LaneOut {
    double* q;
    int64_t os;
    LAFE_INLINE void put(int64_t t, int, const P& y) const { y.store(q + t * os); }
    LAFE_INLINE void tile(int64_t, int64_t) const {}
};
template <class P, bool kStream>
struct RowOut {
    float* const* rows;  // the unit's W rows (from time 0)
    int nl;
    int64_t t0;          // the block's first sample
    float* stage;        // kTile x W floats, 32-byte aligned
    LAFE_INLINE void put(int64_t, int j, const P& y) const { pack_to_f32(stage + j * P::kW, y); }
    LAFE_INLINE void tile(int64_t t, int64_t m) const {
        if (m == kTile) {
            store_tile<P::kW, P::kS, kStream>(stage, rows, nl, t0 + t);
        } else {
            for (int64_t j = 0; j < m; ++j)
                for (int l = 0; l < nl; ++l) rows[l][t0 + t + j] = stage[j * P::kW + l];
        }
    }
};
template <class P>
struct NoOut {
    LAFE_INLINE void put(int64_t, int, const P&) const {}
    LAFE_INLINE void tile(int64_t, int64_t) const {}
};

// Sections [s0, s0 + NS) over n samples from `in` to `out`, states st of the
// cascade.  kKeep: every section's output also to keep[t * ks + (s + 1) * W]
// (s the section's index in the cascade).
template <int NS, bool kKeep, class P, class In, class Out>
LAFE_INLINE void run_group(const In& in, const Out& out, int64_t n, int64_t s0, const double* coef, double* st,
                           double* keep = nullptr, int64_t ks = 0) {
    constexpr int W = P::kW;
    P b0[NS], b1[NS], b2[NS], a1[NS], a2[NS], z1[NS], z2[NS];
    load_fives<NS, P>(coef, s0, b0, b1, b2, a1, a2);
    load_pairs<NS, P>(st, s0, z1, z2);
    for (int64_t tt = 0; tt < n; tt += kTile) {
        const int64_t m = std::min(kTile, n - tt);
        for (int j = 0; j < m; ++j) {
            const int64_t t = tt + j;
            P x = in(t);
            for (int s = 0; s < NS; ++s) {
                const P y = fmadd(b0[s], x, z1[s]);
                z1[s] = fnmadd(a1[s], y, fmadd(b1[s], x, z2[s]));
                z2[s] = fnmadd(a2[s], y, b2[s] * x);
                if constexpr (kKeep) y.store(keep + t * ks + (s0 + s + 1) * W);
                x = y;
            }
            out.put(t, j, x);
        }
        out.tile(tt, m);
    }
    store_pairs<NS, P>(st, s0, z1, z2);
}

// Group size for the sections from s0 on.
inline int group_of(int64_t remaining) { return remaining >= 4 ? 4 : remaining >= 2 ? 2 : 1; }

template <bool kKeep, class P, class In, class Out>
LAFE_INLINE void run_sized(int g, const In& in, const Out& out, int64_t n, int64_t s0, const double* coef,
                           double* st, double* keep = nullptr, int64_t ks = 0) {
    if (g == 4) run_group<4, kKeep, P>(in, out, n, s0, coef, st, keep, ks);
    else if (g == 2) run_group<2, kKeep, P>(in, out, n, s0, coef, st, keep, ks);
    else run_group<1, kKeep, P>(in, out, n, s0, coef, st, keep, ks);
}

// The whole cascade over n samples: the input from xd (shared input, Cu = 1)
// or from buf [n][W] (the block's input in lanes), the last group's output to
// `last`, the groups between through buf in place.
template <class P, class Last>
LAFE_INLINE void run_cascade(bool shared, const double* xd, double* buf, int64_t n, int64_t S, const double* coef,
                             double* st, const Last& last) {
    constexpr int W = P::kW;
    const LaneOut<P> lanes{buf, W};
    for (int64_t s0 = 0; s0 < S;) {
        const int g = group_of(S - s0);
        const bool is_last = s0 + g == S;
        if (s0 == 0 && shared) {
            if (is_last) run_sized<false, P>(g, SharedIn<P>{xd}, last, n, s0, coef, st);
            else run_sized<false, P>(g, SharedIn<P>{xd}, lanes, n, s0, coef, st);
        } else {
            if (is_last) run_sized<false, P>(g, LaneIn<P>{buf, W}, last, n, s0, coef, st);
            else run_sized<false, P>(g, LaneIn<P>{buf, W}, lanes, n, s0, coef, st);
        }
        s0 += g;
    }
}

// The cascade over n samples keeping every section's input and output, in
// the same groups as run_cascade: w[t * (S + 1) * W + s * W] is the input of
// section s (s = 0: the block's input, already there), s = S the cascade's
// output.
template <class P>
LAFE_INLINE void run_cascade_keep(double* w, int64_t n, int64_t S, const double* coef, double* st) {
    constexpr int W = P::kW;
    const int64_t stride = (S + 1) * W;
    for (int64_t s0 = 0; s0 < S;) {
        const int g = group_of(S - s0);
        run_sized<true, P>(g, LaneIn<P>{w + s0 * W, stride}, NoOut<P>{}, n, s0, coef, st, w, stride);
        s0 += g;
    }
}

// Adjoint of sections [s0, s0 + NS) over n samples, backwards in time, for
// the Q::kW lanes from the buffers' first (buffers of W lanes per row).
// g[t * W]: in, the adjoint of the group's output; out, of its input.
// adj[(s * 2 + k) * W]: (G1, G2); acc[(s * 5 + k) * W]: gradient sums.
template <int NS, class Q, int W>
LAFE_INLINE void adjoint_group(const double* w, int64_t stride, double* g, int64_t n, int64_t s0,
                               const double* coef, double* adj, double* acc) {
    Q b0[NS], b1[NS], b2[NS], a1[NS], a2[NS], G1[NS], G2[NS], s_b0[NS], s_b1[NS], s_b2[NS], s_a1[NS], s_a2[NS];
    Q* const five[5] = {b0, b1, b2, a1, a2};
    Q* const sums[5] = {s_b0, s_b1, s_b2, s_a1, s_a2};
    for (int s = 0; s < NS; ++s) {
        for (int k = 0; k < 5; ++k) five[k][s] = Q::load(coef + ((s0 + s) * 5 + k) * W);
        for (int k = 0; k < 5; ++k) sums[k][s] = Q::load(acc + ((s0 + s) * 5 + k) * W);
        G1[s] = Q::load(adj + (s0 + s) * 2 * W);
        G2[s] = Q::load(adj + ((s0 + s) * 2 + 1) * W);
    }
    for (int64_t t = n - 1; t >= 0; --t) {
        Q gin = Q::load(g + t * W);
        const double* wt = w + t * stride;
        for (int s = NS - 1; s >= 0; --s) {
            const Q x = Q::load(wt + (s0 + s) * W);
            const Q y = Q::load(wt + (s0 + s + 1) * W);
            const Q gy = fnmadd(a2[s], G2[s], fnmadd(a1[s], G1[s], gin));
            const Q gx = fmadd(b2[s], G2[s], fmadd(b1[s], G1[s], b0[s] * gy));
            s_b0[s] = fmadd(gy, x, s_b0[s]);
            s_b1[s] = fmadd(G1[s], x, s_b1[s]);
            s_b2[s] = fmadd(G2[s], x, s_b2[s]);
            s_a1[s] = fnmadd(G1[s], y, s_a1[s]);
            s_a2[s] = fnmadd(G2[s], y, s_a2[s]);
            G2[s] = G1[s];
            G1[s] = gy;
            gin = gx;
        }
        gin.store(g + t * W);
    }
    for (int s = 0; s < NS; ++s) {
        for (int k = 0; k < 5; ++k) sums[k][s].store(acc + ((s0 + s) * 5 + k) * W);
        G1[s].store(adj + (s0 + s) * 2 * W);
        G2[s].store(adj + ((s0 + s) * 2 + 1) * W);
    }
}

// The adjoint of the whole cascade over a block, sections from the last down
// in groups of at most `cap` within run_cascade's split, R::kW lanes at a time.
template <class R, int W>
LAFE_INLINE void adjoint_lanes(const double* w, int64_t stride, double* g, int64_t n, int64_t S,
                               const double* coef, double* adj, double* acc, int64_t cap) {
    for (int h = 0; h < W / R::kW; ++h) {
        const int64_t o = h * R::kW;
        for (int64_t s0 = S; s0 > 0;) {
            int64_t start = 0, gsz = 0;
            for (int64_t s = 0; s < s0;) {
                gsz = std::min<int64_t>(cap, group_of(S - s));
                start = s;
                s += gsz;
            }
            if (gsz == 4) adjoint_group<4, R, W>(w + o, stride, g + o, n, start, coef + o, adj + o, acc + o);
            else if (gsz == 2) adjoint_group<2, R, W>(w + o, stride, g + o, n, start, coef + o, adj + o, acc + o);
            else adjoint_group<1, R, W>(w + o, stride, g + o, n, start, coef + o, adj + o, acc + o);
            s0 = start;
        }
    }
}

// The adjoint of the cascade over a block, one native vector of lanes at a
// time (AVX2: 8 lanes are two ymm, adjoint 4 x 4 lanes), in groups of at
// most 2 sections, so that a group's 12 vectors per section nearly stay in
// registers (24 of 32 zmm on AVX-512; AVX2 spills a few of its 16 ymm, and
// still beats 1 section per group, latency-bound, and 4, spilling).
// bench/sosfilt_cascade.cpp, 1 thread, load 4.9: AVX2 backward 87.2-87.9 ms
// (whole 8-lane packs, 4 sections) -> 53.6-54.4 ms (by vector, 2; 57.1-62.7
// with 1, 60.5-62.8 with 4); AVX-512 42.8 -> 42.0 ms (2 instead of 4).  The
// adjoint of a lane runs the same operations in any grouping and order of
// lanes: bitwise the same results.
template <class P>
LAFE_INLINE void adjoint_block(const double* w, int64_t stride, double* g, int64_t n, int64_t S,
                               const double* coef, double* adj, double* acc) {
    adjoint_lanes<biquad::detail::Pack<P::kS, P::kS>, P::kW>(w, stride, g, n, S, coef, adj, acc, 2);
}

// Scratch doubles of a forward unit.
inline size_t forward_scratch(int64_t S, int W) { return static_cast<size_t>((7 * S + kBlock) * W + kBlock); }

template <class F, class P>
struct Forward {
    // The blocks of samples [0, T): the last section group writes the
    // output rows (RowOut, float32) or lanes of buf that are transposed out
    // (float64).
    template <bool kStream>
    static LAFE_INLINE void blocks(const Args<F>& p, const Lanes& L, const F* const* in, F* const* out,
                                   const double* coef, double* st, double* buf, double* xd) {
        const Cascade<F>& c = p.c;
        const bool shared = c.Cu == 1;
        alignas(32) float stage[kTile * P::kW];
        const int64_t nck = c.S * 2 * P::kW;
        double* ck = p.ck ? p.ck + (L.i * p.nblk + L.c0 / P::kW) * ((c.T + kBlock - 1) / kBlock) * nck : nullptr;
        for (int64_t t0 = 0; t0 < c.T; t0 += kBlock) {
            const int64_t n = std::min(kBlock, c.T - t0);
            if (ck) std::memcpy(ck + (t0 / kBlock) * nck, st, sizeof(double) * nck);
            if (shared) shared_block(in[0], t0, n, xd);
            else gather<F, P>(in, t0, n, buf);
            if constexpr (std::is_same<F, float>::value) {
                run_cascade<P>(shared, xd, buf, n, c.S, coef, st, RowOut<P, kStream>{out, L.nl, t0, stage});
            } else {
                run_cascade<P>(shared, xd, buf, n, c.S, coef, st, LaneOut<P>{buf, P::kW});
                scatter<F, P>(buf, out, L.nl, t0, n);
            }
        }
    }

    static LAFE_INLINE void unit(const Args<F>& p, int64_t unit, double* scratch) {
        constexpr int W = P::kW;
        const Cascade<F>& c = p.c;
        const Lanes L = lanes_of(p, unit, W);
        double* coef = scratch;
        double* st = coef + c.S * 5 * W;
        double* buf = st + c.S * 2 * W;
        double* xd = buf + kBlock * W;
        load_coefficients(c, L, W, coef);
        load_state(c.zi, c, L, W, st);
        const F* in[W];
        F* out[W];
        input_rows(c, L, W, in);
        signal_rows(p.y, c, L, W, out);
        // Large float32 outputs are written with streaming stores (they do not
        // fit in the caches, and a streaming store of whole lines skips
        // reading them first), when every row is 32-byte aligned.
        const bool stream = std::is_same<F, float>::value && p.stream &&
                            reinterpret_cast<uintptr_t>(out[0]) % 32 == 0 &&
                            (c.T * static_cast<int64_t>(sizeof(F))) % 32 == 0;
        if (stream) {
            blocks<true>(p, L, in, out, coef, st, buf, xd);
#if LAFE_X86
            __builtin_ia32_sfence();
#endif
        } else {
            blocks<false>(p, L, in, out, coef, st, buf, xd);
        }
        store_state(p.zf, c, L, W, st);
    }
};

// Scratch doubles of a backward unit.
inline size_t backward_scratch(int64_t S, int64_t T, int W) {
    const int64_t nb = (T + kBlock - 1) / kBlock;
    return static_cast<size_t>((5 * S + 2 * S + 2 * S + 5 * S + nb * 2 * S + kBlock * (S + 1) + kBlock) * W + kBlock);
}

template <class F, class P>
struct Backward {
    static LAFE_INLINE void unit(const Args<F>& p, int64_t unit, double* scratch) {
        constexpr int W = P::kW;
        const Cascade<F>& c = p.c;
        const int64_t S = c.S, T = c.T, nb = (T + kBlock - 1) / kBlock;
        const Lanes L = lanes_of(p, unit, W);
        double* coef = scratch;
        double* st = coef + S * 5 * W;
        double* adj = st + S * 2 * W;
        double* acc = adj + S * 2 * W;
        double* ck = acc + S * 5 * W;
        double* w = ck + nb * S * 2 * W;
        double* g = w + kBlock * (S + 1) * W;
        double* xd = g + kBlock * W;
        const int64_t stride = (S + 1) * W;
        load_coefficients(c, L, W, coef);
        load_state(c.zi, c, L, W, st);
        const F* in[W];
        const F* grow[W];
        input_rows(c, L, W, in);
        signal_rows(p.gy, c, L, W, grow);
        // pass 1: the state at every block start (unless the forward kept them)
        const double* cks = p.ck ? p.ck + unit * nb * S * 2 * W : ck;
        for (int64_t k = 0; k < (p.ck ? 0 : nb); ++k) {
            const int64_t t0 = k * kBlock, n = std::min(kBlock, T - t0);
            std::memcpy(ck + k * S * 2 * W, st, sizeof(double) * S * 2 * W);
            if (k + 1 == nb) break;  // the last block's end state is not needed
            if (c.Cu == 1) shared_block(in[0], t0, n, xd);
            else gather<F, P>(in, t0, n, g);
            run_cascade<P>(c.Cu == 1, xd, g, n, S, coef, st, NoOut<P>{});
        }
        // pass 2: the adjoint, block by block from the end
        load_state(p.gzf, c, L, W, adj);
        std::fill(acc, acc + S * 5 * W, 0.0);
        F* gout[W];
        if (c.Cu != 1) signal_rows(p.gu, c, L, W, gout);  // gu [B, C, T]
        for (int64_t k = nb - 1; k >= 0; --k) {
            const int64_t t0 = k * kBlock, n = std::min(kBlock, T - t0);
            std::memcpy(st, cks + k * S * 2 * W, sizeof(double) * S * 2 * W);
            // the block's input into w[t][0], every section's output after it
            gather_input<F, P>(c, in, t0, n, w, stride);
            run_cascade_keep<P>(w, n, S, coef, st);
            gather<F, P>(grow, t0, n, g);
            adjoint_block<P>(w, stride, g, n, S, coef, adj, acc);
            if (c.Cu != 1) {
                scatter<F, P>(g, gout, L.nl, t0, n);
            } else if (p.gu_part) {
                double* q = p.gu_part + unit * T + t0;
                for (int64_t t = 0; t < n; ++t) q[t] = hsum(P::load(g + t * W));
            } else {
                F* q = p.gu + L.i * T + t0;
                for (int64_t t = 0; t < n; ++t) q[t] = static_cast<F>(hsum(P::load(g + t * W)));
            }
        }
        store_state(p.gzi, c, L, W, adj);
        for (int l = 0; l < L.nl; ++l) {
            double* q = p.gba_part + (L.i * c.C + L.c0 + l) * S * 5;
            for (int64_t s = 0; s < S; ++s)
                for (int j = 0; j < 5; ++j) q[s * 5 + j] = acc[(s * 5 + j) * W + l];
        }
    }
};

}  // namespace

int64_t checkpoint_doubles(int64_t B, int64_t C, int64_t T, int64_t S) {
    const int W = lanes_for(C);
    return B * ((C + W - 1) / W) * ((T + kBlock - 1) / kBlock) * S * 2 * W;
}

template <class F>
void cascade_forward(const Cascade<F>& c, F* y, F* zf, int num_threads, double* ck) {
    Args<F> p;
    p.ck = ck;
    p.c = c;
    p.B = c.B;
    const int W = lanes_for(c.C);
    p.nblk = (c.C + W - 1) / W;
    p.y = y;
    p.zf = zf;
    p.stream = sizeof(F) * static_cast<size_t>(c.B * c.C * c.T) >= kStreamBytes;
    if (c.T == 0) {
        // no samples: the final state is the initial one
        if (zf) {
            const int64_t n = c.B * c.C * c.S * 2;
            for (int64_t j = 0; j < n; ++j) zf[j] = c.zi ? c.zi[j] : F(0);
        }
        return;
    }
    advise_huge_pages(y, sizeof(F) * static_cast<size_t>(c.B * c.C * c.T));
    auto fn = biquad::detail::pick<Forward, F, Args<F>>(W);
    biquad::detail::launch(fn, p, forward_scratch(c.S, W), num_threads);
}

template <class F>
void cascade_backward(const Cascade<F>& c, const F* gy, const F* gzf, F* gu, double* gb, double* ga, F* gzi,
                      int num_threads, const double* ck) {
    const int W = lanes_for(c.C);
    Args<F> p;
    p.ck = const_cast<double*>(ck);  // read only by the backward
    p.c = c;
    p.B = c.B;
    p.nblk = (c.C + W - 1) / W;
    p.gy = gy;
    p.gzf = gzf;
    p.gu = gu;
    p.gzi = gzi;
    const int64_t S = c.S, C = c.C, B = c.B, T = c.T;
    std::vector<double> gba(static_cast<size_t>(B * C * S * 5), 0.0);
    p.gba_part = gba.data();
    std::vector<double> part;
    if (c.Cu == 1 && p.nblk > 1 && T > 0) {
        part.resize(static_cast<size_t>(B * p.nblk * T));
        p.gu_part = part.data();
    }
    if (T == 0) {
        if (gzi) {
            const int64_t n = B * C * S * 2;
            for (int64_t j = 0; j < n; ++j) gzi[j] = gzf ? gzf[j] : F(0);
        }
    } else {
        auto fn = biquad::detail::pick<Backward, F, Args<F>>(W);
        biquad::detail::launch(fn, p, backward_scratch(S, T, W), num_threads);
    }
    // coefficient gradients: per row, or summed over the batch in batch order
    const int64_t G = c.G, per = C * S;
    for (int64_t j = 0; j < G * per; ++j) {
        double s[5] = {0, 0, 0, 0, 0};
        if (G == 1) {
            for (int64_t i = 0; i < B; ++i)
                for (int k = 0; k < 5; ++k) s[k] += gba[(i * per + j) * 5 + k];
        } else {
            for (int k = 0; k < 5; ++k) s[k] = gba[j * 5 + k];
        }
        for (int k = 0; k < 3; ++k) gb[j * 3 + k] = s[k];
        for (int k = 0; k < 2; ++k) ga[j * 2 + k] = s[3 + k];
    }
    if (p.gu_part) {
        const int64_t nblk = p.nblk;
        const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(resolve_threads(num_threads), B)));
        const double* q = p.gu_part;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < B; ++i)
            for (int64_t t = 0; t < T; ++t) {
                double s = 0.0;
                for (int64_t j = 0; j < nblk; ++j) s += q[(i * nblk + j) * T + t];
                gu[i * T + t] = static_cast<F>(s);
            }
    }
}

template void cascade_forward<float>(const Cascade<float>&, float*, float*, int, double*);
template void cascade_forward<double>(const Cascade<double>&, double*, double*, int, double*);
template void cascade_backward<float>(const Cascade<float>&, const float*, const float*, float*, double*,
                                      double*, float*, int, const double*);
template void cascade_backward<double>(const Cascade<double>&, const double*, const double*, double*, double*,
                                       double*, double*, int, const double*);

}  // namespace sosfilt
}  // namespace learnafe
