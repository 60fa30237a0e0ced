// The C API of the biquad bank kernels (biquad_filterbank.h): packs the
// coefficients per channel block, fills each kernel's argument struct,
// sizes its per-thread scratch, launches it on the chosen instruction set
// and reduces the gradient partials.  The pieces:
//  * biquad_simd.h: SIMD packs (W channel lanes of doubles), explicit FMAs;
//  * biquad_recursion.h: the recursion, FIR and adjoint steps on packs;
//  * biquad_noise.h: the envelope op's in-kernel noise;
//  * biquad_plain_kernels.h: forward and backward of the plain bank;
//  * biquad_envelope_kernels.h: forward and backward of the fused envelope;
//  * biquad_dispatch.h/.cpp: ISA choice, OpenMP launch, fixed-order sums.
// Every biquad_*.cpp is compiled with -ffp-contract=off: every product and
// sum is rounded as written and the fused multiply-adds are explicit, so all
// code paths (block and tail loops, AVX-512, AVX2, baseline) give bitwise
// identical results.
#include "biquad_filterbank.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "biquad_args.h"
#include "biquad_dispatch.h"
#include "biquad_envelope_kernels.h"
#include "biquad_noise.h"
#include "biquad_plain_kernels.h"
#include "parallel.h"

namespace learnafe {
namespace biquad {
namespace {

using namespace detail;

// Scratch (doubles per thread) of the backward kernels.
size_t scratch_backward(int W, int64_t T, bool own_checkpoints) {
    const int64_t nb = (T + kTimeBlock - 1) / kTimeBlock;
    return static_cast<size_t>(((own_checkpoints ? 2 * nb : 0) + 2 * (kTimeBlock + 2) + 2 * kTimeBlock) * W +
                               kTimeBlock);
}
// (the envelope's: EnvBackward::run; lambda by vector on every path, the
// larger of the layouts)
size_t scratch_env_backward(int W, int64_t frames, int64_t hop, bool noisy) {
    return static_cast<size_t>((2 * frames + (hop + 2) + hop + (noisy ? noise_rows(hop) : 0)) * W + hop);
}

// The bank of x [B, T] with b [C, 3], a [C, 2] (per_example: b [B, C, 3],
// a [B, C, 2], one bank per batch item): coefficients packed per channel
// block into `coef`, one packed bank per batch item when per example.
template <class F>
void fill_bank(Bank<F>& p, const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
               std::vector<double>& coef, bool per_example = false) {
    p.x = x;
    p.B = B;
    p.T = T;
    p.C = C;
    p.W = lanes_for(C);
    p.nblk = (C + p.W - 1) / p.W;
    const int64_t banks = per_example ? B : 1;
    p.coef_stride = per_example ? p.nblk * 5 * p.W : 0;
    coef.assign(static_cast<size_t>(banks * p.nblk * 5 * p.W), 0.0);
    for (int64_t bi = 0; bi < banks; ++bi) {
        for (int64_t c = 0; c < C; ++c) {
            double* d = coef.data() + bi * p.coef_stride + (c / p.W) * 5 * p.W + (c % p.W);
            const double* bc = b + (bi * C + c) * 3;
            const double* ac = a + (bi * C + c) * 2;
            d[0] = bc[0];
            d[p.W] = bc[1];
            d[2 * p.W] = bc[2];
            d[3 * p.W] = ac[0];
            d[4 * p.W] = ac[1];
        }
    }
    p.coef = coef.data();
}

// The envelope settings; noise_std [C] (or [B, C] with std_per_example)
// packed per channel block into `stdp` ([nblk][W], or [B][nblk][W]);
// noise_batch < 1 or > B: every batch item keyed by its own index.
template <class F>
void fill_envelope(Envelope& e, const Bank<F>& p, int64_t hop, double alpha, Rectify rectify,
                   const double* noise_std, uint64_t seed, std::vector<double>& stdp,
                   bool std_per_example, int64_t noise_batch) {
    e.hop = hop;
    e.frames = p.T / hop;
    e.alpha = alpha;
    e.rectify = rectify;
    e.seed = seed;
    e.noise_batch = noise_batch >= 1 && noise_batch < p.B ? noise_batch : std::max<int64_t>(p.B, 1);
    if (noise_std) {
        const int64_t rows = std_per_example ? p.B : 1;
        e.std_stride = std_per_example ? p.nblk * p.W : 0;
        stdp.assign(static_cast<size_t>(rows * p.nblk * p.W), 0.0);
        for (int64_t bi = 0; bi < rows; ++bi)  // lane c % W of block c / W
            std::copy(noise_std + bi * p.C, noise_std + (bi + 1) * p.C, stdp.begin() + bi * e.std_stride);
        e.noise_std = stdp.data();
    }
}

}  // namespace

int64_t checkpoint_doubles(int64_t B, int64_t T, int64_t C) {
    const int64_t W = lanes_for(C), nblk = (C + W - 1) / W;
    return B * nblk * 2 * ((T + kTimeBlock - 1) / kTimeBlock) * W;
}

template <class F>
void forward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C, const F* zi,
             F* y, F* zf, int num_threads, double* checkpoints, bool per_example) {
    std::vector<double> coef;
    ForwardArgs<F> p;
    fill_bank(p, x, B, T, b, a, C, coef, per_example);
    p.zi = zi;
    p.y = y;
    p.zf = zf;
    p.ck_out = checkpoints;
    const size_t bytes = static_cast<size_t>(B * C * T) * sizeof(F);
    advise_huge_pages(y, bytes);
    p.stream = bytes >= kStreamBytes;
    launch(pick<Forward, F, ForwardArgs<F>>(p.W), p, 0, num_threads);
}

template <class F>
void backward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C, const F* zi,
              const F* gy, const F* gzf, F* gx, double* gb, double* ga, F* gzi, int num_threads,
              const double* checkpoints, bool per_example) {
    std::vector<double> coef;
    BackwardArgs<F> p;
    fill_bank(p, x, B, T, b, a, C, coef, per_example);
    p.zi = zi;
    p.gy = gy;
    p.gzf = gzf;
    p.gzi = gzi;
    p.ck_in = checkpoints;
    GradBuffers<F> g;
    g.attach(p, p, gx);
    launch(pick<Backward, F, BackwardArgs<F>>(p.W), p, scratch_backward(p.W, T, checkpoints == nullptr),
           num_threads);
    g.finish(p, p, gb, ga, num_threads);
}

int64_t envelope_checkpoint_size(int64_t C, int64_t T, int64_t hop) {
    const int W = lanes_for(C);
    return ((C + W - 1) / W) * (T / hop) * 2 * W;
}

template <class F>
void envelope_forward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                      int64_t hop, double alpha, Rectify rectify, const double* noise_std,
                      uint64_t seed, F* out, double* ck, int num_threads, bool per_example,
                      bool std_per_example, int64_t noise_batch) {
    std::vector<double> coef, stdp;
    EnvForwardArgs<F> p;
    fill_bank(p, x, B, T, b, a, C, coef, per_example);
    fill_envelope(p, p, hop, alpha, rectify, noise_std, seed, stdp, std_per_example, noise_batch);
    p.out = out;
    p.ck = ck;
    const size_t scratch = noise_std ? static_cast<size_t>(noise_rows(hop) * p.W) : 0;
    launch(pick<EnvForward, F, EnvForwardArgs<F>>(p.W), p, scratch, num_threads);
}

template <class F>
void envelope_backward(const F* x, int64_t B, int64_t T, const double* b, const double* a, int64_t C,
                       int64_t hop, double alpha, Rectify rectify, const double* noise_std,
                       uint64_t seed, const double* ck, const F* gout, F* gx, double* gb,
                       double* ga, double* gstd, int num_threads, bool per_example,
                       bool std_per_example, int64_t noise_batch) {
    std::vector<double> coef, stdp;
    EnvBackwardArgs<F> p;
    fill_bank(p, x, B, T, b, a, C, coef, per_example);
    fill_envelope(p, p, hop, alpha, rectify, noise_std, seed, stdp, std_per_example, noise_batch);
    p.gout = gout;
    p.ck = ck;
    GradBuffers<F> g;
    g.attach(p, p, gx);
    if (noise_std) g.attach_std(p);
    launch(pick<EnvBackward, F, EnvBackwardArgs<F>>(p.W), p,
           scratch_env_backward(p.W, ck ? 0 : p.frames, hop, noise_std != nullptr), num_threads);
    g.finish(p, p, gb, ga, num_threads);
    if (noise_std && gstd) g.finish_std(p, gstd, std_per_example);
}

void gaussian_noise(uint64_t seed, int64_t B, int64_t C, int64_t T, double* out, int num_threads) {
    if (B <= 0 || C <= 0) return;
    std::vector<double> coef, zeros(static_cast<size_t>(C * 3), 0.0);
    NoiseArgs<double> p;
    fill_bank<double>(p, nullptr, B, T, zeros.data(), zeros.data(), C, coef);
    p.seed = seed;
    p.out = out;
    launch(pick<NoiseFill, double, NoiseArgs<double>>(p.W), p, static_cast<size_t>(noise_rows(256) * p.W),
           num_threads);
}

#define LAFE_INSTANTIATE(F)                                                                       \
    template void forward<F>(const F*, int64_t, int64_t, const double*, const double*, int64_t,  \
                             const F*, F*, F*, int, double*, bool);                             \
    template void backward<F>(const F*, int64_t, int64_t, const double*, const double*, int64_t, \
                              const F*, const F*, const F*, F*, double*, double*, F*, int,      \
                              const double*, bool);                                             \
    template void envelope_forward<F>(const F*, int64_t, int64_t, const double*, const double*,  \
                                      int64_t, int64_t, double, Rectify, const double*, uint64_t, \
                                      F*, double*, int, bool, bool, int64_t);                   \
    template void envelope_backward<F>(const F*, int64_t, int64_t, const double*, const double*, \
                                       int64_t, int64_t, double, Rectify, const double*,          \
                                       uint64_t, const double*, const F*, F*, double*, double*,   \
                                       double*, int, bool, bool, int64_t);

LAFE_INSTANTIATE(float)
LAFE_INSTANTIATE(double)

}  // namespace biquad
}  // namespace learnafe