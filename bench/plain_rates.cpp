// Best process CPU time and best wall time of one call of the plain bank's
// forward (f), backward with the forward's checkpoints (b), both (fb), a fill
// of an output of the op's size (fill) or a read of dL/dy (read), for B x
// 20000 samples, 16 channels, float32; `p`: per-example coefficients.  Build
// as bench/plain_dump.cpp (-fopenmp) and run:
//
//   LEARNAFE_ISA=avx2 /tmp/plain_rates B threads repeats f|b|fb|fill|read [p]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>
#include "biquad_filterbank.h"
#include "cpu_time.h"
using namespace learnafe::biquad;
int main(int argc, char** argv) {
    const int64_t B = std::atoi(argv[1]), T = 20000, C = 16;
    const int nt = std::atoi(argv[2]), rep = std::atoi(argv[3]);
    const char* mode = argv[4];
    const bool pe = argc > 5 && argv[5][0] == 'p';
    std::mt19937_64 gen(0);
    std::normal_distribution<float> nd;
    std::vector<float> x(B * T), gy(B * C * T), zi(B * C * 2), gzf(B * C * 2);
    for (auto& v : x) v = nd(gen);
    for (auto& v : gy) v = nd(gen);
    const int64_t nbank = pe ? B : 1;
    std::vector<double> b(nbank * C * 3), a(nbank * C * 2);
    for (int64_t k = 0; k < nbank * C; ++k) {
        int64_t c = k % C;
        const double r = 0.9 + 0.099 * c / (C - 1), w = 0.05 + 2.9 * c / (C - 1);
        a[k * 2] = -2 * r * std::cos(w); a[k * 2 + 1] = r * r;
        b[k * 3] = 1 - r; b[k * 3 + 1] = 0; b[k * 3 + 2] = -(1 - r);
    }
    float* y = static_cast<float*>(std::aligned_alloc(4096, B * C * T * 4));
    std::memset(y, 0, B * C * T * 4);
    std::vector<float> zf(B * C * 2), gx(B * T), gzi(B * C * 2);
    std::vector<double> ck(checkpoint_doubles(B, T, C)), gb(nbank * C * 3), ga(nbank * C * 2);
    auto fwd = [&] { forward<float>(x.data(), B, T, b.data(), a.data(), C, zi.data(), y, zf.data(), nt, ck.data(), pe); };
    auto bwd = [&] { backward<float>(x.data(), B, T, b.data(), a.data(), C, zi.data(), gy.data(), gzf.data(), gx.data(), gb.data(), ga.data(), gzi.data(), nt, ck.data(), pe); };
    volatile float sink = 0;
    auto rd = [&] { float acc[16] = {};
#pragma omp parallel for num_threads(nt) reduction(+:acc[:16])
        for (int64_t i = 0; i < B * C * T; i += 16) for (int k = 0; k < 16; ++k) acc[k] += gy[i + k];
        float t = 0; for (float v : acc) t += v; sink = t; };
    auto fill = [&] { for (int64_t i = 0; i < B * C * T; ++i) y[i] = 1.0f; };
    fwd();
    double bc = 1e30, bw = 1e30;
    for (int r = 0; r < rep; ++r) {
        const double c0 = bench::cpu_seconds();
        auto w0 = std::chrono::steady_clock::now();
        if (!std::strcmp(mode, "f")) fwd(); else if (!std::strcmp(mode, "b")) bwd(); else if (!std::strcmp(mode, "fill")) fill(); else if (!std::strcmp(mode, "read")) rd(); else { fwd(); bwd(); }
        bw = std::min(bw, std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count());
        bc = std::min(bc, bench::cpu_seconds() - c0);
    }
    std::printf("%s B=%ld t=%d %s%s: cpu %.3f ms  wall %.3f ms  (%.3f ns/sc cpu)\n", isa_name(), (long)B, nt, mode, pe ? " pe" : "", 1e3 * bc, 1e3 * bw, 1e9 * bc / (B * C * T));
}
