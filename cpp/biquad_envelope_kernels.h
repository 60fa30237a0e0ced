// The fused envelope kernels: EnvForward (rectify + one-pole low-pass +
// decimation of the bank's outputs, optionally with input-referred noise
// generated in the kernel) and EnvBackward (its adjoint, recomputing one
// frame at a time from frame-start states instead of storing [B, C, T]).
// One call of `unit` computes one (batch item, channel block).
#pragma once

#include <algorithm>
#include <cstdint>

#include "biquad_args.h"
#include "biquad_by_vector.h"
#include "biquad_noise.h"
#include "biquad_recursion.h"
#include "biquad_simd.h"

namespace learnafe {
namespace biquad {
namespace detail {

// The unit whose noise the unit u draws: batch item bi keyed as bi % noise_batch.
inline Unit noise_unit(const Envelope& e, Unit u) {
    u.bi %= e.noise_batch;
    return u;
}

// The noise std of a unit's W lanes (shared, or its batch item's row).
template <class V>
LAFE_INLINE V unit_std(const Envelope& e, const Unit& u) {
    return V::load(e.noise_std + u.bi * e.std_stride + u.blk * V::kW);
}

template <class F, class V>
struct EnvForward {
    // Frames of the unit; with Noisy, channel c's input is x + std_c n_c.
    template <bool Noisy, Rectify R>
    static LAFE_INLINE void frames(const EnvForwardArgs<F>& p, const Unit& u, const Coef<V>& k, float* nbuf) {
        constexpr int W = V::kW;
        const double alpha = p.alpha;
        const V sd = Noisy ? unit_std<V>(p, u) : V::zero();
        const NoiseKey<V> key(Noisy ? p.seed : 0);
        const Unit nu = noise_unit(p, u);
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
                const int64_t t0 = f * p.hop;
                FrameNoise<V> gen(key, nu, t0, p.hop, nbuf);
                noisy_frame(gen, t0, p.hop, [&](int64_t t, const float* nt) LAFE_INLINE_LAMBDA {
                    const V xin = static_cast<double>(xs[t]) + sd * load_noise<V>(nt);
                    e += alpha * (rectify(filter_step_in(k, xin, v1, v2), R) - e);
                });
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

    static LAFE_INLINE void unit(const EnvForwardArgs<F>& p, int64_t uid, double* scratch) {
        constexpr int W = V::kW;
        const Unit u = unit_of(p, uid);
        const Coef<V> k(p.coef + u.bi * p.coef_stride + u.blk * 5 * W);
        float* nbuf = reinterpret_cast<float*>(scratch);  // float32 noise rows (FrameNoise)
        if (p.noise_std) {
            if (p.rectify == Rectify::Abs) frames<true, Rectify::Abs>(p, u, k, nbuf);
            else frames<true, Rectify::Square>(p, u, k, nbuf);
        } else {
            if (p.rectify == Rectify::Abs) frames<false, Rectify::Abs>(p, u, k, nbuf);
            else frames<false, Rectify::Square>(p, u, k, nbuf);
        }
    }
};

template <class F, class V>
struct EnvBackward {
    // The recursion over one frame from (c1, c2), storing v at vout (as
    // `advance`), with channel c's input x + std_c n_c when Noisy.
    template <bool Noisy>
    static LAFE_INLINE void advance_frame(const EnvBackwardArgs<F>& p, const Unit& u, const Coef<V>& k,
                                          const V& sd, const NoiseKey<V>& key, int64_t t0, V& c1,
                                          V& c2, double* vout, float* nbuf, const float*& nr) {
        constexpr int W = V::kW;
        const F* xs = p.x + u.bi * p.T + t0;
        if constexpr (Noisy) {
            const Unit nu = noise_unit(p, u);
            FrameNoise<V> gen(key, nu, t0, p.hop, nbuf);
            nr = gen.rows(t0);
            if (vout) {
                c2.store(vout);
                c1.store(vout + W);
            }
            noisy_frame(gen, t0, p.hop, [&](int64_t t, const float* nt) LAFE_INLINE_LAMBDA {
                const V xin = static_cast<double>(xs[t]) + sd * load_noise<V>(nt);
                const V v = recurse_in(k, xin, c1, c2);
                if (vout) v.store(vout + (t + 2) * W);
            });
        } else {
            (void)sd;
            (void)key;
            (void)nbuf;
            (void)nr;
            advance(k, xs, p.hop, c1, c2, vout);
        }
    }

    // The filter state at every frame start: saved by the forward pass, or
    // recomputed into `own` ([frames][2][W]).
    template <bool Noisy>
    static LAFE_INLINE const double* frame_states(const EnvBackwardArgs<F>& p, const Unit& u,
                                                  const Coef<V>& k, const V& sd,
                                                  const NoiseKey<V>& key, float* nbuf,
                                                  const float*& nr, double* own) {
        constexpr int W = V::kW;
        if (p.ck) return p.ck + (u.bi * p.nblk + u.blk) * p.frames * 2 * W;
        V v1 = V::zero(), v2 = V::zero();
        for (int64_t f = 0; f < p.frames; ++f) {
            v1.store(own + 2 * f * W);
            v2.store(own + (2 * f + 1) * W);
            advance_frame<Noisy>(p, u, k, sd, key, f * p.hop, v1, v2, nullptr, nbuf, nr);
        }
        return own;
    }

    // The adjoint of one frame (samples t0 .. t0 + hop - 1, delay lines in
    // vbuf) for all lanes at once; lambda's channel sums into `sums`.
    template <bool Noisy>
    static LAFE_INLINE void adjoint_frame(const EnvBackwardArgs<F>& p, const Coef<V>& k, const double* vbuf,
                                          const float* nr, Adjoint<V>& adj, V& ge, V& gsd, double* sums) {
        constexpr int W = V::kW;
        const double alpha = p.alpha, decay = 1.0 - p.alpha;
        for (int64_t t = p.hop - 1; t >= 0; --t) {
            const V vm = V::load(vbuf + (t + 2) * W);
            const V vm1 = V::load(vbuf + (t + 1) * W);
            const V vm2 = V::load(vbuf + t * W);
            const V g = rectify_adjoint(fir(k, vm, vm1, vm2), alpha * ge, p.rectify);
            const V lam = adj.step(k, g, vm, vm1, vm2);
            if constexpr (Noisy) gsd += lam * load_noise<V>(nr + t * W);
            sums[t] = hsum(lam);
            if (t > 0) ge = decay * ge;
        }
    }

    // adjoint_frame one native vector (S lanes) at a time (biquad_by_vector.h):
    // the rectifier's and the envelope's adjoint, the filter adjoint, d/dstd,
    // one vector's state and accumulators in registers; lambda into lbuf
    // ([hop][W]), summed over the channels afterwards.  Per lane the same
    // operations in the same order as adjoint_frame.
    typedef LanesOf<V> L;
    static constexpr int kG = V::kW / V::kS;

    template <bool Noisy, Rectify R>
    static LAFE_INLINE void adjoint_frame_by_vector(const EnvBackwardArgs<F>& p, const Coef<V>& k,
                                                    const double* vbuf, const float* nr, Adjoint<L>* adj,
                                                    L* ge, L* gsd, double* lbuf) {
        constexpr int W = V::kW, S = V::kS;
        const double alpha = p.alpha, decay = 1.0 - p.alpha;
        const int64_t hop = p.hop;
        for (int q = 0; q < kG; ++q) {
            const Coef<L> kq = lanes_of(k, q);
            Adjoint<L> a = adj[q];
            L e = ge[q], sd = gsd[q];
            const double* vq = vbuf + q * S;
            for (int64_t t = hop - 1; t >= 0; --t) {
                const L vm = L::load(vq + (t + 2) * W);
                const L vm1 = L::load(vq + (t + 1) * W);
                const L vm2 = L::load(vq + t * W);
                const L g = rectify_adjoint(fir(kq, vm, vm1, vm2), alpha * e, R);
                const L lam = a.step(kq, g, vm, vm1, vm2);
                if constexpr (Noisy) sd += lam * load_noise<L>(nr + t * W + q * S);
                lam.store(lbuf + t * W + q * S);
                if (t > 0) e = decay * e;
            }
            adj[q] = a;
            ge[q] = e;
            gsd[q] = sd;
        }
    }

    // Scratch of one unit: the frame's delay lines vbuf ([hop + 2][W]),
    // lambda by vector ([hop][W], kByVector), the channel sums ([hop]), the
    // float32 noise rows ([noise_rows(hop)][W] floats in the space of as many
    // doubles, with Noisy) and, unless the forward
    // kept them, the frame-start states ([frames][2][W]).
    template <bool Noisy>
    static LAFE_INLINE void run(const EnvBackwardArgs<F>& p, const Unit& u, double* scratch) {
        constexpr int W = V::kW;
        const Coef<V> k(p.coef + u.bi * p.coef_stride + u.blk * 5 * W);
        const int64_t hop = p.hop, nf = p.frames;
        const double decay = 1.0 - p.alpha;
        double* vbuf = scratch;
        double* lbuf = vbuf + (hop + 2) * W;
        double* sums = lbuf + (kByVector<V> ? hop * W : 0);
        float* nbuf = reinterpret_cast<float*>(sums + hop);  // float rows in double scratch
        double* own = sums + hop + (Noisy ? noise_rows(hop) * W : 0);
        const V sd = Noisy ? unit_std<V>(p, u) : V::zero();
        const NoiseKey<V> key(Noisy ? p.seed : 0);
        const float* nr = nullptr;
        const double* ck = frame_states<Noisy>(p, u, k, sd, key, nbuf, nr, own);
        // Samples after the last frame do not reach the output.
        if (p.nblk > 1)
            std::fill(p.gx_part + (u.bi * p.nblk + u.blk) * p.T + nf * hop,
                      p.gx_part + (u.bi * p.nblk + u.blk + 1) * p.T, 0.0);
        else
            std::fill(p.gx + u.bi * p.T + nf * hop, p.gx + (u.bi + 1) * p.T, F(0));

        Adjoint<V> adj;
        V gsd = V::zero();  // d/dstd: sum of lambda * n
        V ge = V::zero();   // dL/de[m + 1]
        Adjoint<L> ag[kG];  // by native vector (kByVector)
        L geq[kG], gsdq[kG];
        for (int q = 0; q < kG; ++q) geq[q] = gsdq[q] = L::zero();
        for (int64_t f = nf - 1; f >= 0; --f) {
            const int64_t t0 = f * hop;
            V c1 = V::load(ck + 2 * f * W), c2 = V::load(ck + (2 * f + 1) * W);
            advance_frame<Noisy>(p, u, k, sd, key, t0, c1, c2, vbuf, nbuf, nr);
            double gol[W] = {};
            for (int l = 0; l < u.nc; ++l)
                gol[l] = static_cast<double>(p.gout[(u.bi * p.C + u.c0 + l) * nf + f]);
            if constexpr (kByVector<V>) {
                // dL/de at the frame's last sample
                for (int q = 0; q < kG; ++q) geq[q] = decay * geq[q] + L::load(gol + q * V::kS);
                if (p.rectify == Rectify::Abs)
                    adjoint_frame_by_vector<Noisy, Rectify::Abs>(p, k, vbuf, nr, ag, geq, gsdq, lbuf);
                else
                    adjoint_frame_by_vector<Noisy, Rectify::Square>(p, k, vbuf, nr, ag, geq, gsdq, lbuf);
                lambda_sums<V>(lbuf, hop, sums);
            } else {
                ge = decay * ge + V::load(gol);  // dL/de at the frame's last sample
                adjoint_frame<Noisy>(p, k, vbuf, nr, adj, ge, gsd, sums);
            }
            store_gx_block(p, p, u, t0, hop, sums);
        }
        if constexpr (kByVector<V>) {
            adj = join_adjoints<V>(ag);
            for (int q = 0; q < kG; ++q) gsd.p[q] = gsdq[q].p[0];
        }
        adj.store_coef_grads(p, p, u);
        if constexpr (Noisy) {
            double t[W];
            gsd.store(t);
            for (int l = 0; l < u.nc; ++l) p.gstd_part[u.bi * p.C + u.c0 + l] = t[l];
        }
    }

    static LAFE_INLINE void unit(const EnvBackwardArgs<F>& p, int64_t uid, double* scratch) {
        const Unit u = unit_of(p, uid);
        if (p.noise_std) run<true>(p, u, scratch);
        else run<false>(p, u, scratch);
    }
};

}  // namespace detail
}  // namespace biquad
}  // namespace learnafe
