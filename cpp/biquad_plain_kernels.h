// The plain biquad bank kernels: Forward (y and the final state from x and
// the initial state, optionally keeping block-start states for the backward)
// and Backward (its adjoint: dL/dx, dL/db, dL/da, dL/dzi from dL/dy and
// dL/dzf).  One call of `unit` computes one (batch item, channel block).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "biquad_args.h"
#include "biquad_by_vector.h"
#include "biquad_recursion.h"
#include "biquad_simd.h"

namespace learnafe {
namespace biquad {
namespace detail {

// Forward outputs of at least this size are written with streaming stores.
constexpr size_t kStreamBytes = size_t(8) << 20;

template <class F, class V>
struct Forward {
    // The AVX2 float32 path (kTile4): blocks of 16 samples; the block's input
    // is converted to double once (the broadcasts then load it), each
    // sample's output is rounded to float32 into a staging row, and each
    // 4-channel x 8-sample tile is transposed in float32 (transpose4_lanes),
    // so that every channel gets two adjacent 32-byte stores (one whole
    // 64-byte line when the row is so aligned).  The recursion of a block
    // runs in groups of two native vectors (8 channels: two independent
    // chains) one group after the other: a whole 16-channel unit's
    // coefficients and state (28 vectors) do not fit in AVX2's 16 registers
    // and were reloaded from the stack every sample; a group's (14) nearly
    // do.  Each lane runs the same operations: bitwise the same outputs.
    // Returns the first sample not done.
    template <bool kStream>
    static LAFE_INLINE int64_t tiles4(const Coef<V>& k, const F* xb, F* yb, int64_t T, int nc,
                                      double* ck, V& v1, V& v2) {
        constexpr int W = V::kW, S = V::kS;
        constexpr int NG = W / S >= 2 ? 2 : 1;  // native vectors per group
        typedef Pack<NG * S, S> P;
        alignas(32) float st[16 * W];
        alignas(32) double xd[16];
        int64_t t0 = 0;
        for (; t0 + 16 <= T; t0 += 16) {
            if (ck && t0 % kTimeBlock == 0) {
                v1.store(ck + 2 * (t0 / kTimeBlock) * W);
                v2.store(ck + (2 * (t0 / kTimeBlock) + 1) * W);
            }
            for (int i = 0; i < 4; ++i) {
                const F4 f = *reinterpret_cast<const F4u*>(xb + t0 + 4 * i);
                *reinterpret_cast<typename VecOf<double, 4>::U*>(xd + 4 * i) =
                    __builtin_convertvector(f, typename VecOf<double, 4>::V);
            }
            for (int q = 0; q < W / (NG * S); ++q) {
                const Coef<P> kq = vectors_of<NG>(k, q);
                P g1 = vectors_of<NG>(v1, q), g2 = vectors_of<NG>(v2, q);
                for (int s = 0; s < 16; ++s)
                    pack_to_f32(st + s * W + q * NG * S, filter_step_in(kq, broadcast_load<NG * S, S>(xd + s), g1, g2));
                set_vectors<NG>(v1, q, g1);
                set_vectors<NG>(v2, q, g2);
            }
            for (int g = 0; 4 * g < nc; ++g) {
                F8 r[2][4];
                for (int h = 0; h < 2; ++h) {
                    const float* q = st + 8 * h * W + 4 * g;
                    for (int j = 0; j < 4; ++j) r[h][j] = join4(q + j * W, q + (j + 4) * W);
                    transpose4_lanes(r[h]);
                }
                for (int j = 0; j < 4 && 4 * g + j < nc; ++j) {
                    F* row = yb + (4 * g + j) * T + t0;
                    store8<kStream>(row, r[0][j]);
                    store8<kStream>(row + 8, r[1][j]);
                }
            }
        }
        return t0;
    }

    // 16 samples of the AVX-512 float32 path as 16 rows of 16 floats, one per
    // channel (kHalfStage): row i < 8 joins the low halves (channels 0-7) of
    // samples i and i + 8, row i + 8 their high halves, then stages 1, 2, 4
    // of the transpose; the same rows as pack_to_vec and transpose<16>.
    static LAFE_INLINE void halves_to_rows(const Coef<V>& k, const F* xs, V& v1, V& v2,
                                           typename VecOf<F, 16>::V* r) {
        typedef typename VecOf<F, 8>::V H;
        H h[16][2];
        for (int s = 0; s < 16; ++s) {
            const V y = filter_step(k, static_cast<double>(xs[s]), v1, v2);
            h[s][0] = __builtin_convertvector(y.p[0], H);
            h[s][1] = __builtin_convertvector(y.p[1], H);
        }
        for (int i = 0; i < 8; ++i) {
            r[i] = concat2(h[i][0], h[i + 8][0], std::make_index_sequence<16>());
            r[i + 8] = concat2(h[i][1], h[i + 8][1], std::make_index_sequence<16>());
        }
        transpose<16, typename VecOf<F, 16>::V, 1, 8>(r);
    }

    static LAFE_INLINE void unit(const ForwardArgs<F>& p, int64_t uid, double*) {
        constexpr int W = V::kW;
        typedef typename VecOf<F, W>::V VF;
        const Unit u = unit_of(p, uid);
        const Coef<V> k(p.coef + u.bi * p.coef_stride + u.blk * 5 * W);
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
        // (On the AVX2 float32 path the block store is 32 bytes.)
        constexpr int64_t kStore = kTile4<F, V> ? 32 : static_cast<int64_t>(sizeof(VF));
        const bool stream = p.stream && reinterpret_cast<uintptr_t>(yb) % kStore == 0 &&
                            (T * static_cast<int64_t>(sizeof(F))) % kStore == 0;
        // W samples x W channels at a time, transposed in registers so that
        // each channel gets one contiguous W-sample store.
        double* ck = p.ck_out ? p.ck_out + uid * 2 * W * ((T + kTimeBlock - 1) / kTimeBlock) : nullptr;
        if constexpr (kTile4<F, V>) {
            if (stream)
                t0 = tiles4<true>(k, xb, yb, T, u.nc, ck, v1, v2);
            else
                t0 = tiles4<false>(k, xb, yb, T, u.nc, ck, v1, v2);
        } else {
        for (; t0 + W <= T; t0 += W) {
            if (ck && t0 % kTimeBlock == 0) {
                v1.store(ck + 2 * (t0 / kTimeBlock) * W);
                v2.store(ck + (2 * (t0 / kTimeBlock) + 1) * W);
            }
            VF r[W];
            if constexpr (kHalfStage<F, V>) {
                halves_to_rows(k, xb + t0, v1, v2, r);
            } else {
                for (int s = 0; s < W; ++s)
                    r[s] = pack_to_vec<F>(filter_step(k, static_cast<double>(xb[t0 + s]), v1, v2));
                transpose<W>(r);
            }
            if (stream) {
                for (int l = 0; l < u.nc; ++l) stream_store<V::kS>(yb + l * T + t0, r[l]);
            } else {
                for (int l = 0; l < u.nc; ++l) std::memcpy(yb + l * T + t0, &r[l], sizeof(VF));
            }
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

// dL/dy of a unit for samples t0 .. t0 + n - 1 as n rows of W lanes (double;
// float32 on the AVX2 float32 path, converted when read: gy_row).
template <class F, class V>
LAFE_INLINE void load_gy_block(const BackwardArgs<F>& p, const Unit& u, int64_t t0, int64_t n, double* gyb) {
    constexpr int W = V::kW;
    typedef typename VecOf<F, W>::V VF;
    const F* gb = p.gy + (u.bi * p.C + u.c0) * p.T + t0;  // channel l at gb + l * T
    if constexpr (kTile4<F, V>) {
        // 8 samples x 4 channels at a time: one 32-byte load per channel, the
        // in-lane 4 x 4 transpose, and each half stored as 4 lanes of a row.
        float* gyf = reinterpret_cast<float*>(gyb);
        int64_t t = 0;
        for (; t + 8 <= n; t += 8) {
            for (int g = 0; g < W / 4; ++g) {
                F8 r[4];
                for (int j = 0; j < 4; ++j)
                    r[j] = 4 * g + j < u.nc ? *reinterpret_cast<const F8u*>(gb + (4 * g + j) * p.T + t) : F8{};
                transpose4_lanes(r);
                for (int j = 0; j < 4; ++j) {
                    *reinterpret_cast<F4u*>(gyf + (t + j) * W + 4 * g) = __builtin_shufflevector(r[j], r[j], 0, 1, 2, 3);
                    *reinterpret_cast<F4u*>(gyf + (t + j + 4) * W + 4 * g) =
                        __builtin_shufflevector(r[j], r[j], 4, 5, 6, 7);
                }
            }
        }
        for (; t < n; ++t) {
            float* q = gyf + t * W;
            for (int l = 0; l < W; ++l) q[l] = l < u.nc ? gb[l * p.T + t] : 0.0f;
        }
        return;
    }
    int64_t t = 0;
    for (; t + W <= n; t += W) {
        VF r[W];
        for (int l = 0; l < u.nc; ++l) std::memcpy(&r[l], gb + l * p.T + t, sizeof(VF));
        for (int l = u.nc; l < W; ++l) r[l] = VF{};  // padded lanes
        if constexpr (kHalfStage<F, V>) {
            // stages 1, 2, 4; the last one is the split into halves: sample s < 8
            // is the low halves of rows s and s + 8, sample s + 8 their high halves
            transpose<W, VF, 1, W / 2>(r);
            typedef typename V::v D8;
            for (int s = 0; s < W / 2; ++s) {
                V lo, hi;
                lo.p[0] = __builtin_convertvector(half_of<0>(r[s], std::make_index_sequence<8>()), D8);
                lo.p[1] = __builtin_convertvector(half_of<0>(r[s + 8], std::make_index_sequence<8>()), D8);
                hi.p[0] = __builtin_convertvector(half_of<8>(r[s], std::make_index_sequence<8>()), D8);
                hi.p[1] = __builtin_convertvector(half_of<8>(r[s + 8], std::make_index_sequence<8>()), D8);
                lo.store(gyb + (t + s) * W);
                hi.store(gyb + (t + s + 8) * W);
            }
        } else {
            transpose<W>(r);
            for (int s = 0; s < W; ++s) pack_from_vec<F, W, V::kS>(r[s]).store(gyb + (t + s) * W);
        }
    }
    for (; t < n; ++t) {
        double* q = gyb + t * W;
        for (int l = 0; l < W; ++l) q[l] = l < u.nc ? static_cast<double>(gb[l * p.T + t]) : 0.0;
    }
}

// Row t of the dL/dy block that load_gy_block wrote, as doubles.
template <class F, class V>
LAFE_INLINE V gy_row(const double* gyb, int64_t t) {
    if constexpr (kTile4<F, V>)
        return pack_from_io<float, V::kW, V::kS>(reinterpret_cast<const float*>(gyb) + t * V::kW);
    else
        return V::load(gyb + t * V::kW);
}

// Lanes q * S .. q * S + S - 1 of row t of the dL/dy block, as doubles.
template <class F, class V>
LAFE_INLINE LanesOf<V> gy_lanes(const double* gyb, int64_t t, int q) {
    constexpr int W = V::kW, S = V::kS;
    if constexpr (kTile4<F, V>) {
        LanesOf<V> r;
        r.p[0] = load_f32_as_f64<S>(reinterpret_cast<const float*>(gyb) + t * W + q * S);
        return r;
    } else {
        return LanesOf<V>::load(gyb + t * W + q * S);
    }
}

// Scratch of one backward unit: the delay lines v[t0-2 ..] of the current
// block j and of block j - 1 ([kTimeBlock + 2][W] each), dL/dy and lambda of
// the block ([kTimeBlock][W] each), its channel sums ([kTimeBlock]) and,
// without the forward's checkpoints, the block-start states ([nb][2][W]).
template <int W>
struct BackwardScratch {
    double* vcur;
    double* vnext;
    double* gyb;
    double* lbuf;
    double* sums;
    double* own_states;
    LAFE_INLINE explicit BackwardScratch(double* s)
        : vcur(s),
          vnext(vcur + (kTimeBlock + 2) * W),
          gyb(vnext + (kTimeBlock + 2) * W),
          lbuf(gyb + kTimeBlock * W),
          sums(lbuf + kTimeBlock * W),
          own_states(sums + kTimeBlock) {}
};

// Prefetch of block j - 1's dL/dy while block j runs in reverse time, one
// cache line per step (lines of one channel, then the next channel's row),
// so that the requests do not overflow the line-fill buffers.
template <class F>
struct GyPrefetch {
    static constexpr int64_t kLineElems = 64 / static_cast<int64_t>(sizeof(F));
    static constexpr int64_t kLines = kTimeBlock / kLineElems;
    const F* pf;
    const int64_t T, nlines, per_step;
    int64_t line = 0, done = 0;

    LAFE_INLINE GyPrefetch(const BackwardArgs<F>& p, const Unit& u, int64_t j, int64_t n)
        : pf(j > 0 ? p.gy + (u.bi * p.C + u.c0) * p.T + j * kTimeBlock - kTimeBlock : nullptr),
          T(p.T),
          nlines(j > 0 ? u.nc * kLines : 0),
          per_step((nlines + n - 1) / n) {}

    LAFE_INLINE void step() {
        for (int64_t q = 0; q < per_step && done < nlines; ++q, ++done) {
            __builtin_prefetch(pf + line * kLineElems, 0, 3);
            if (++line == kLines) {
                line = 0;
                pf += T;
            }
        }
    }
};

template <class F, class V>
struct Backward {
    static constexpr int W = V::kW;

    // Filter state at block starts: from the forward pass when it kept them
    // (bitwise the same values), else recomputed into `own`.
    static LAFE_INLINE const double* block_states(const BackwardArgs<F>& p, const Unit& u,
                                                  const Coef<V>& k, int64_t uid, int64_t nb,
                                                  double* own) {
        if (p.ck_in) return p.ck_in + uid * 2 * nb * W;
        V v1, v2;
        load_state(p.zi, u, p.C, v1, v2);
        checkpoint(k, p.x + u.bi * p.T, p.T, kTimeBlock, v1, v2, own);
        return own;
    }

    // dL/dv[m] of the last two samples also has the final-state gradient
    // (v[T-1], v[T-2]); t is m's index in the block.
    static LAFE_INLINE void add_final_state_gradient(Adjoint<V>& adj, V& lam, bool last, const V& gz0,
                                                     const V& gz1, const double* vcur, int64_t t) {
        const V extra = last ? gz0 : gz1;
        lam += extra;
        adj.lp1 = lam;
        adj.ga1 = fnmadd(extra, V::load(vcur + (t + 1) * W), adj.ga1);
        adj.ga2 = fnmadd(extra, V::load(vcur + t * W), adj.ga2);
    }

    // Pass A of block j (n samples): the adjoint recursion lambda (backward
    // in time, a chain of one multiply and one subtraction per sample),
    // interleaved with the recursion of block j - 1 when kNext (forward in
    // time, the same kind of chain, into s.vnext): the two are independent,
    // so each fills the other's pipeline gaps.  Block j - 1 is always
    // complete (kTimeBlock samples); only the last block can be shorter.
    // Leaves the channel sums of lambda in s.sums (or lambda in s.lbuf when
    // they are summed in batches).
    template <bool kNext>
    static LAFE_INLINE void adjoint_block(const BackwardArgs<F>& p, const Unit& u, const Coef<V>& k,
                                          const double* ck, int64_t j, int64_t n,
                                          BackwardScratch<W>& s, Adjoint<V>& adj, const V& gz0,
                                          const V& gz1) {
        const int64_t T = p.T, t0 = j * kTimeBlock;
        // the buffers as locals: the stores below (may_alias vectors) would
        // otherwise make every access reload the pointers from `s`
        double* const vcur = s.vcur;
        double* const vnext = s.vnext;
        const double* const gyb = s.gyb;
        double* const lbuf = s.lbuf;
        double* const sums = s.sums;
        GyPrefetch<F> prefetch(p, u, j, n);
        V r1 = V::zero(), r2 = V::zero();
        const F* xr = kNext ? p.x + u.bi * T + t0 - kTimeBlock : p.x + u.bi * T;
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
            prefetch.step();
            if constexpr (kNext) {
                recurse(k, static_cast<double>(xr[i]), r1, r2).store(vnext + (i + 2) * W);
                ++i;
            }
            const int64_t m = t0 + t;
            V lam = adj.step(k, gy_row<F, V>(gyb, t), V::load(vcur + (t + 2) * W),
                             V::load(vcur + (t + 1) * W), V::load(vcur + t * W));
            if (m >= T - 2) add_final_state_gradient(adj, lam, m == T - 1, gz0, gz1, vcur, t);
            if constexpr (kBatchedSum<V>)
                lam.store(lbuf + t * W);
            else
                sums[t] = hsum(lam);
        }
    }

    // On the AVX2 path the adjoint runs one native vector (4 channels) at a
    // time: the state of a whole 16-channel unit (4 x 4 delay-line and
    // adjoint vectors, 5 x 4 accumulators, 5 x 4 coefficients) is four times
    // AVX2's 16 registers, and spilling it costs a load and a store around
    // almost every FMA; one vector's share (4 adjoint state vectors, 5
    // accumulators, 5 coefficients) nearly fits.  Every lane runs the same
    // operations in the same order as in adjoint_block, so the results are
    // bitwise the same; lambda goes to s.lbuf, summed over the channels
    // afterwards in hsum's order.
    static constexpr bool kByVector = detail::kByVector<V>;
    static constexpr int kG = W / V::kS;  // native vectors per unit
    typedef LanesOf<V> L;

    static LAFE_INLINE void adjoint_block_by_vector(const BackwardArgs<F>& p, const Unit& u, const Coef<V>& k,
                                                    const double* ck, int64_t j, int64_t n,
                                                    BackwardScratch<W>& s, Adjoint<L>* adj, const V& gz0,
                                                    const V& gz1) {
        constexpr int S = V::kS;
        const int64_t T = p.T, t0 = j * kTimeBlock;
        const double* const vcur = s.vcur;
        const double* const gyb = s.gyb;
        double* const lbuf = s.lbuf;
        // one prefetch every 4 samples of each vector's pass
        GyPrefetch<F> prefetch(p, u, j, (n + 3) / 4 * kG);
        if (j > 0) {
            // the recursion of block j - 1 into s.vnext (complete: kTimeBlock samples)
            V r1 = V::load(ck + 2 * (j - 1) * W), r2 = V::load(ck + (2 * j - 1) * W);
            advance(k, p.x + u.bi * T + t0 - kTimeBlock, kTimeBlock, r1, r2, s.vnext);
        }
        for (int q = 0; q < kG; ++q) {
            const Coef<L> kq = lanes_of(k, q);
            Adjoint<L> a = adj[q];
            const double* vq = vcur + q * S;
            // samples t >= tf are the last two of the signal (final-state gradient)
            const int64_t tf = std::max<int64_t>(0, std::min(n, T - 2 - t0));
            int64_t t = n - 1;
            for (; t >= tf; --t) {
                L lam = a.step(kq, gy_lanes<F, V>(gyb, t, q), L::load(vq + (t + 2) * W),
                               L::load(vq + (t + 1) * W), L::load(vq + t * W));
                const L extra = lanes_of(t0 + t == T - 1 ? gz0 : gz1, q);
                lam += extra;
                a.lp1 = lam;
                a.ga1 = fnmadd(extra, L::load(vq + (t + 1) * W), a.ga1);
                a.ga2 = fnmadd(extra, L::load(vq + t * W), a.ga2);
                lam.store(lbuf + t * W + q * S);
            }
            for (; t >= 0; --t) {
                if ((t & 3) == 0) prefetch.step();
                a.step(kq, gy_lanes<F, V>(gyb, t, q), L::load(vq + (t + 2) * W), L::load(vq + (t + 1) * W),
                       L::load(vq + t * W))
                    .store(lbuf + t * W + q * S);
            }
            adj[q] = a;
        }
    }

    // dL/d(v[-1], v[-2]) into gzi: v[-1] feeds y[0], y[1], v[0], v[1];
    // v[-2] feeds y[0], v[0]; the final state aliases them when T < 2.
    static LAFE_INLINE void store_initial_state_gradient(const BackwardArgs<F>& p, const Unit& u,
                                                         const Coef<V>& k, const Adjoint<V>& adj,
                                                         const V& gz0, const V& gz1) {
        V gm1 = k.b1 * adj.gyp1 + k.b2 * adj.gyp2 - k.a1 * adj.lp1 - k.a2 * adj.lp2;
        V gm2 = k.b2 * adj.gyp1 - k.a2 * adj.lp1;
        if (p.T == 0) {
            gm1 += gz0;
            gm2 += gz1;
        } else if (p.T == 1) {
            gm1 += gz1;
        }
        store_state(p.gzi, u, p.C, gm1, gm2);
    }

    static LAFE_INLINE void unit(const BackwardArgs<F>& p, int64_t uid, double* scratch) {
        const Unit u = unit_of(p, uid);
        const Coef<V> k(p.coef + u.bi * p.coef_stride + u.blk * 5 * W);
        const int64_t T = p.T;
        const int64_t nb = (T + kTimeBlock - 1) / kTimeBlock;
        BackwardScratch<W> s(scratch);
        const double* ck = block_states(p, u, k, uid, nb, s.own_states);

        V gz0, gz1;
        load_state(p.gzf, u, p.C, gz0, gz1);
        Adjoint<V> adj;
        Adjoint<L> ag[kG];  // adj by native vector (kByVector)
        if (nb > 0) {
            V c1 = V::load(ck + 2 * (nb - 1) * W), c2 = V::load(ck + (2 * nb - 1) * W);
            advance(k, p.x + u.bi * T + (nb - 1) * kTimeBlock, T - (nb - 1) * kTimeBlock, c1, c2, s.vcur);
        }
        for (int64_t j = nb - 1; j >= 0; --j) {
            const int64_t t0 = j * kTimeBlock;
            const int64_t n = std::min(kTimeBlock, T - t0);
            load_gy_block<F, V>(p, u, t0, n, s.gyb);
            if constexpr (kByVector)
                adjoint_block_by_vector(p, u, k, ck, j, n, s, ag, gz0, gz1);
            else if (j > 0)
                adjoint_block<true>(p, u, k, ck, j, n, s, adj, gz0, gz1);
            else
                adjoint_block<false>(p, u, k, ck, j, n, s, adj, gz0, gz1);
            if constexpr (kByVector || kBatchedSum<V>) lambda_sums<V>(s.lbuf, n, s.sums);
            store_gx_block(p, p, u, t0, n, s.sums);
            std::swap(s.vcur, s.vnext);
        }
        if constexpr (kByVector) adj = join_adjoints<V>(ag);
        adj.store_coef_grads(p, p, u);
        if (p.gzi) store_initial_state_gradient(p, u, k, adj, gz0, gz1);
    }
};

}  // namespace detail
}  // namespace biquad
}  // namespace learnafe
