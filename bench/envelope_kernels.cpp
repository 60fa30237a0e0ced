// The fused envelope kernels alone (learnafe::biquad::envelope_forward /
// envelope_backward, cpp/biquad_filterbank.h).
//
//   time: the bench shape of noise_kernel_cost (B=32, T=20000, C=16, hop 200,
//         float32, abs, one thread, the forward's frame-start states handed to
//         the backward): process CPU time, best of the repeats, of the
//         forward and the backward, noise off and on.
//   dump FILE: every output and gradient (out, frame-start states, dL/dx,
//         dL/db, dL/da, dL/dstd) of many cases (C = 3, 8, 16, 21; several T
//         and hops; float32 and float64; abs and square; noise off, shared
//         and per-example std; with and without the forward's states;
//         1 and 3 threads) written to FILE, so that two builds (and the ISA
//         paths) can be compared byte for byte.
//
// The path follows LEARNAFE_ISA as in the extension.  Build and run (from the
// repository root, the flags of the kernels in CMakeLists.txt):
//
//   g++ -O3 -std=c++17 -fno-math-errno -ffp-contract=off -Wno-psabi -fopenmp -Icpp
//       bench/envelope_kernels.cpp cpp/biquad_filterbank.cpp cpp/biquad_dispatch.cpp
//       cpp/parallel.cpp -o /tmp/envelope_kernels
//   LEARNAFE_ISA=avx2 /tmp/envelope_kernels time [repeats]
//   LEARNAFE_ISA=avx2 /tmp/envelope_kernels dump /tmp/env_avx2.bin
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "biquad_filterbank.h"
#include "cpu_time.h"

namespace {

using namespace learnafe::biquad;

struct Case {
    int64_t B, T, C, hop;
    Rectify rect;
    int noise;  // 0 off, 1 shared std, 2 per-example std
    bool ck;
    int threads;
};

// A bank of resonators, pole radius 0.9-0.999, spread in frequency.
void resonators(int64_t C, std::vector<double>& b, std::vector<double>& a) {
    b.assign(C * 3, 0.0);
    a.assign(C * 2, 0.0);
    for (int64_t c = 0; c < C; ++c) {
        const double s = C > 1 ? double(c) / (C - 1) : 0.0;
        const double r = 0.9 + 0.099 * s, w = 0.05 + 2.9 * s;
        a[c * 2] = -2 * r * std::cos(w);
        a[c * 2 + 1] = r * r;
        b[c * 3] = 1 - r;
        b[c * 3 + 1] = 0.1 * (1 - r);
        b[c * 3 + 2] = -(1 - r);
    }
}

template <class T>
void dump(std::FILE* f, const std::vector<T>& v) {
    std::fwrite(v.data(), sizeof(T), v.size(), f);
}

template <class F>
void run_case(const Case& k, std::FILE* f) {
    std::mt19937_64 gen(k.B * 1000003 + k.T * 101 + k.C * 7 + k.hop);
    std::normal_distribution<double> nd;
    const int64_t nf = k.T / k.hop;
    std::vector<F> x(k.B * k.T), out(k.B * k.C * nf), gout(k.B * k.C * nf), gx(k.B * k.T);
    for (auto& v : x) v = static_cast<F>(0.3 * nd(gen));
    for (auto& v : gout) v = static_cast<F>(nd(gen));
    std::vector<double> b, a, gb(k.C * 3), ga(k.C * 2);
    resonators(k.C, b, a);
    std::vector<double> sd(k.noise == 2 ? k.B * k.C : k.C), gs(sd.size());
    for (auto& v : sd) v = 0.05 * (1.0 + std::fabs(nd(gen)));
    const double* std_p = k.noise ? sd.data() : nullptr;
    std::vector<double> ck(k.B * envelope_checkpoint_size(k.C, k.T, k.hop));
    const double alpha = 0.013;
    envelope_forward<F>(x.data(), k.B, k.T, b.data(), a.data(), k.C, k.hop, alpha, k.rect, std_p, 42,
                        out.data(), ck.data(), k.threads, false, k.noise == 2, 0);
    envelope_backward<F>(x.data(), k.B, k.T, b.data(), a.data(), k.C, k.hop, alpha, k.rect, std_p, 42,
                         k.ck ? ck.data() : nullptr, gout.data(), gx.data(), gb.data(), ga.data(),
                         k.noise ? gs.data() : nullptr, k.threads, false, k.noise == 2, 0);
    dump(f, out);
    dump(f, ck);
    dump(f, gx);
    dump(f, gb);
    dump(f, ga);
    if (k.noise) dump(f, gs);
}

int dump_all(const char* path) {
    std::FILE* f = std::fopen(path, "wb");
    if (!f) return 1;
    int n = 0;
    const int64_t shapes[][3] = {{1000, 200, 3}, {1000, 200, 8}, {1000, 200, 16}, {1000, 200, 21},
                                 {997, 37, 16}, {513, 1, 5}, {2400, 160, 21}, {130, 7, 16},
                                 {64, 64, 12}, {5, 6, 16}};
    for (const auto& s : shapes)
        for (int rect = 0; rect < 2; ++rect)
            for (int noise = 0; noise < 3; ++noise)
                for (int ck = 0; ck < 2; ++ck)
                    for (int dbl = 0; dbl < 2; ++dbl) {
                        const Case k{3, s[0], s[2], s[1], rect ? Rectify::Square : Rectify::Abs, noise,
                                     ck != 0, 1 + 2 * ((n++) % 2)};
                        if (dbl) run_case<double>(k, f);
                        else run_case<float>(k, f);
                    }
    std::fclose(f);
    std::printf("isa %s: %d cases written to %s\n", isa_name(), n, path);
    return 0;
}

int time_bench(int repeats) {
    const int64_t B = 32, T = 20000, C = 16, hop = 200, nf = T / hop;
    std::mt19937_64 gen(0);
    std::normal_distribution<float> nd;
    std::vector<float> x(B * T), out(B * C * nf), gout(B * C * nf, 1.0f), gx(B * T);
    for (auto& v : x) v = 0.1f * nd(gen);
    std::vector<double> b, a, gb(C * 3), ga(C * 2), sd(C, 0.01), gs(C);
    resonators(C, b, a);
    std::vector<double> ck(B * envelope_checkpoint_size(C, T, hop));
    const double alpha = 1.0 - std::exp(-1.0 / (0.01 * 20000.0));
    double t[4];
    for (int nz = 0; nz < 2; ++nz) {
        const double* s = nz ? sd.data() : nullptr;
        t[2 * nz] = bench::best_of(repeats, [&] {
            envelope_forward<float>(x.data(), B, T, b.data(), a.data(), C, hop, alpha, Rectify::Abs, s, 1,
                                    out.data(), ck.data(), 1);
        });
        t[2 * nz + 1] = bench::best_of(repeats, [&] {
            envelope_backward<float>(x.data(), B, T, b.data(), a.data(), C, hop, alpha, Rectify::Abs, s, 1,
                                     ck.data(), gout.data(), gx.data(), gb.data(), ga.data(),
                                     nz ? gs.data() : nullptr, 1);
        });
    }
    std::printf("isa %s: fwd %.3f ms, bwd %.3f ms, fwd_noise %.3f ms, bwd_noise %.3f ms\n", isa_name(),
                1e3 * t[0], 1e3 * t[1], 1e3 * t[2], 1e3 * t[3]);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 2 && std::strcmp(argv[1], "dump") == 0) return dump_all(argv[2]);
    if (argc > 1 && std::strcmp(argv[1], "time") == 0) return time_bench(argc > 2 ? std::atoi(argv[2]) : 10);
    std::fprintf(stderr, "usage: %s time [repeats] | dump FILE\n", argv[0]);
    return 2;
}
