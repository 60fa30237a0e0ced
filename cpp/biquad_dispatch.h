// ISA dispatch and the parallel launch of the biquad kernels.  A kernel is a
// class template K<F, V> with `static void unit(const Args&, int64_t unit,
// double* scratch)`, the work of one (batch item, channel block); pick()
// returns it compiled for the instruction set chosen once at run time
// (AVX-512, AVX2+FMA or baseline, through target attributes, so the binary
// runs on any x86-64) and launch() runs every unit over OpenMP threads.  A
// unit is always computed by one thread in a fixed order, and reductions
// across units (GradBuffers) run in a fixed order afterwards, so results do
// not depend on the thread count or the schedule.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "biquad_args.h"
#include "biquad_simd.h"
#include "parallel.h"

namespace learnafe {
namespace biquad {
namespace detail {

enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };

// The instruction set of this machine, or the one LEARNAFE_ISA names
// ("generic"; "avx2" where the CPU has it; anything else: the best one),
// read once (biquad_dispatch.cpp).
Isa isa();

template <class P>
using UnitFn = void (*)(const P&, int64_t, double*);

template <class K, class P>
void run_generic(const P& p, int64_t u, double* s) {
    K::unit(p, u, s);
}
#if LAFE_X86
template <class K, class P>
LAFE_TARGET_AVX2 void run_avx2(const P& p, int64_t u, double* s) {
    K::unit(p, u, s);
}
template <class K, class P>
LAFE_TARGET_AVX512 void run_avx512(const P& p, int64_t u, double* s) {
    K::unit(p, u, s);
}
#endif

// Native doubles per vector register of each path (at most W).
template <int W, int S>
using PackFor = Pack<W, (S < W ? S : W)>;

template <template <class, class> class K, class F, class P, int W>
UnitFn<P> pick_isa() {
#if LAFE_X86
    switch (isa()) {
        case Isa::Avx512: return &run_avx512<K<F, PackFor<W, 8>>, P>;
        case Isa::Avx2: return &run_avx2<K<F, PackFor<W, 4>>, P>;
        default: break;
    }
#endif
    return &run_generic<K<F, PackFor<W, 2>>, P>;
}

// Kernel K for I/O type F with argument struct P, at W lanes per block.
template <template <class, class> class K, class F, class P>
UnitFn<P> pick(int W) {
    if (W == 4) return pick_isa<K, F, P, 4>();
    if (W == 8) return pick_isa<K, F, P, 8>();
    return pick_isa<K, F, P, 16>();
}

// Lanes per channel block for a bank of C channels.
inline int lanes_for(int64_t C) { return C <= 4 ? 4 : C <= 8 ? 8 : 16; }

// Runs fn on every unit (batch item x channel block) with `scratch` doubles
// per thread.
template <class P>
void launch(UnitFn<P> fn, const P& p, size_t scratch, int num_threads) {
    const int64_t n = p.B * p.nblk;
    if (n <= 0) return;
    const int nt = static_cast<int>(std::min<int64_t>(resolve_threads(num_threads), n));
#pragma omp parallel num_threads(nt)
    {
        std::vector<double> buf(std::max<size_t>(scratch, 1));
#pragma omp for schedule(dynamic, 1)
        for (int64_t u = 0; u < n; ++u) fn(p, u, buf.data());
    }
}

// Gradient buffers for the backward kernels; reduces the per-unit partials
// in a fixed order (batch item ascending, channel block ascending).
template <class F>
struct GradBuffers {
    std::unique_ptr<double[]> gx_part;
    std::vector<double> gba_part;
    void attach(const Bank<F>& p, GradOut<F>& g, F* gx) {
        g.gx = gx;
        gba_part.assign(static_cast<size_t>(p.B * p.C * 5), 0.0);
        g.gba_part = gba_part.data();
        if (p.nblk > 1) {
            // every element is written by the units (no zero fill needed)
            gx_part.reset(new double[static_cast<size_t>(p.B * p.nblk * p.T)]);
            g.gx_part = gx_part.get();
        }
    }
    std::vector<double> gstd_part;
    void attach_std(EnvBackwardArgs<F>& p) {
        gstd_part.assign(static_cast<size_t>(p.B * p.C), 0.0);
        p.gstd_part = gstd_part.data();
    }
    // d/dstd[c]: the unit partials summed in batch order (shared std), or
    // d/dstd[b, c] per batch item (per-example std).
    void finish_std(const Bank<F>& p, double* gstd, bool per_example) const {
        if (per_example) {
            std::copy(gstd_part.begin(), gstd_part.end(), gstd);
            return;
        }
        for (int64_t c = 0; c < p.C; ++c) {
            double s = 0.0;
            for (int64_t bi = 0; bi < p.B; ++bi) s += gstd_part[bi * p.C + c];
            gstd[c] = s;
        }
    }
    // gb, ga: [C, 3], [C, 2] summed in batch order (shared coefficients) or
    // [B, C, 3], [B, C, 2] per batch item (per-example coefficients).
    void finish(const Bank<F>& p, const GradOut<F>& g, double* gb, double* ga, int num_threads) {
        if (p.coef_stride != 0) {
            for (int64_t k = 0; k < p.B * p.C; ++k) {
                for (int j = 0; j < 3; ++j) gb[k * 3 + j] = gba_part[k * 5 + j];
                for (int j = 0; j < 2; ++j) ga[k * 2 + j] = gba_part[k * 5 + 3 + j];
            }
        }
        for (int64_t c = 0; c < (p.coef_stride != 0 ? 0 : p.C); ++c) {
            double s[5] = {0, 0, 0, 0, 0};
            for (int64_t bi = 0; bi < p.B; ++bi)
                for (int j = 0; j < 5; ++j) s[j] += gba_part[(bi * p.C + c) * 5 + j];
            for (int j = 0; j < 3; ++j) gb[c * 3 + j] = s[j];
            for (int j = 0; j < 2; ++j) ga[c * 2 + j] = s[3 + j];
        }
        if (p.nblk > 1) {
            const int64_t B = p.B, T = p.T, nblk = p.nblk;
            const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(resolve_threads(num_threads), B)));
            const double* part = gx_part.get();
            F* gx = g.gx;
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

}  // namespace detail
}  // namespace biquad
}  // namespace learnafe
