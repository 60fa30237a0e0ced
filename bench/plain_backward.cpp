// The plain biquad bank's forward and backward kernels alone
// (learnafe::biquad::forward / backward, cpp/biquad_filterbank.h) on the
// op's bench shape: B=32, T=20000, C=16, float32, one thread, the forward's
// checkpoints handed to the backward.  Prints the process CPU time (best of
// the repeats) of filling an output of the op's size, of the forward and of
// the backward, and their ratios to the fill; with a file name, also writes
// every output and gradient (y, zf, dL/dx, dL/db, dL/da, dL/dzi) there, so
// that two builds can be compared byte for byte.  The path follows
// LEARNAFE_ISA as in the extension.  Build and run (from the repository root):
//
//   g++ -O3 -std=c++17 -fno-math-errno -ffp-contract=off -Wno-psabi -fopenmp -Icpp
//       bench/plain_backward.cpp cpp/biquad_filterbank.cpp cpp/biquad_dispatch.cpp
//       cpp/parallel.cpp -o /tmp/plain_backward
//   LEARNAFE_ISA=avx2 /tmp/plain_backward [repeats] [dump file]
//
// (the flags of the kernels, CMakeLists.txt).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

#include "biquad_filterbank.h"
#include "cpu_time.h"

namespace {

using bench::best_of;
using bench::cpu_seconds;

template <class T>
void dump(std::FILE* f, const std::vector<T>& v) {
    std::fwrite(v.data(), sizeof(T), v.size(), f);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace learnafe::biquad;
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 20;
    const int64_t B = 32, T = 20000, C = 16;
    std::mt19937_64 gen(0);
    std::normal_distribution<float> nd;
    std::vector<float> x(B * T), gy(B * C * T), zi(B * C * 2), gzf(B * C * 2);
    for (auto& v : x) v = nd(gen);
    for (auto& v : gy) v = nd(gen);
    for (auto& v : zi) v = 0.1f * nd(gen);
    for (auto& v : gzf) v = nd(gen);
    // a bank of resonators, pole radius 0.9-0.999, spread in frequency
    std::vector<double> b(C * 3), a(C * 2);
    for (int64_t c = 0; c < C; ++c) {
        const double r = 0.9 + 0.099 * c / (C - 1), w = 0.05 + 2.9 * c / (C - 1);
        a[c * 2] = -2 * r * std::cos(w);
        a[c * 2 + 1] = r * r;
        b[c * 3] = 1 - r;
        b[c * 3 + 1] = 0;
        b[c * 3 + 2] = -(1 - r);
    }
    std::vector<float> y(B * C * T), zf(B * C * 2), gx(B * T), gzi(B * C * 2);
    std::vector<double> ck(checkpoint_doubles(B, T, C)), gb(C * 3), ga(C * 2);
    const double fill = best_of(repeats, [&] {
        for (auto& v : y) v = 1.0f;
    });
    const double fwd = best_of(repeats, [&] {
        forward<float>(x.data(), B, T, b.data(), a.data(), C, zi.data(), y.data(), zf.data(), 1, ck.data(), false);
    });
    const double bwd = best_of(repeats, [&] {
        backward<float>(x.data(), B, T, b.data(), a.data(), C, zi.data(), gy.data(), gzf.data(), gx.data(),
                        gb.data(), ga.data(), gzi.data(), 1, ck.data(), false);
    });
    std::printf("isa %s: fill %.3f ms, forward %.3f ms, backward %.3f ms; forward / fill %.2fx, "
                "(forward + backward) / fill %.2fx; backward %.3f ns per sample-channel\n",
                isa_name(), 1e3 * fill, 1e3 * fwd, 1e3 * bwd, fwd / fill, (fwd + bwd) / fill,
                1e9 * bwd / (B * C * T));
    if (argc > 2) {
        std::FILE* f = std::fopen(argv[2], "wb");
        if (!f) return 1;
        dump(f, y);
        dump(f, zf);
        dump(f, gx);
        dump(f, gb);
        dump(f, ga);
        dump(f, gzi);
        std::fclose(f);
    }
    return 0;
}
