// Every output and gradient of the plain biquad bank (y, zf, dL/dx, dL/db,
// dL/da, dL/dzi and y into a misaligned output) over 528 small cases (T 0 -
// 4096, C 1 - 33, B 1 - 5, 1 and 2 threads, float32 and float64, shared and
// per-example coefficients, with and without checkpoints and zi / dL/dzf) and
// the bench shape (B=32, T=20000, C=16; streaming stores), written to one
// file, so that two builds (and the ISA paths: LEARNAFE_ISA) can be compared
// byte for byte with cmp.  Build (from the repository root) and run:
//
//   g++ -O3 -std=c++17 -fno-math-errno -ffp-contract=off -Wno-psabi -fopenmp -Icpp
//       bench/plain_dump.cpp cpp/biquad_filterbank.cpp cpp/biquad_dispatch.cpp
//       cpp/parallel.cpp -o /tmp/plain_dump
//   LEARNAFE_ISA=avx2 /tmp/plain_dump /tmp/avx2.bin  (560 MB)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "biquad_filterbank.h"
using namespace learnafe::biquad;
template <class T> void dump(std::FILE* f, const std::vector<T>& v) { std::fwrite(v.data(), sizeof(T), v.size(), f); }
template <class F>
void one(std::FILE* f, int64_t B, int64_t C, int64_t T, bool pe, int nt, bool useck, bool withzi, std::mt19937_64& gen) {
    std::normal_distribution<double> nd;
    std::vector<F> x(B * T), gy(B * C * T), zi(B * C * 2), gzf(B * C * 2);
    for (auto& v : x) v = F(nd(gen));
    for (auto& v : gy) v = F(nd(gen));
    for (auto& v : zi) v = F(0.1 * nd(gen));
    for (auto& v : gzf) v = F(nd(gen));
    const int64_t nbank = pe ? B : 1;
    std::vector<double> b(nbank * C * 3), a(nbank * C * 2);
    for (int64_t k = 0; k < nbank * C; ++k) {
        const double r = 0.8 + 0.199 * std::abs(std::sin(1.3 * k + 0.2)), w = 0.05 + 3.0 * std::abs(std::sin(0.7 * k));
        a[k * 2] = -2 * r * std::cos(w);
        a[k * 2 + 1] = r * r;
        b[k * 3] = 1 - r + 0.01 * nd(gen);
        b[k * 3 + 1] = 0.1 * nd(gen);
        b[k * 3 + 2] = -(1 - r);
    }
    std::vector<F> y(B * C * T), zf(B * C * 2), gx(B * T), gzi(B * C * 2);
    std::vector<double> ck(checkpoint_doubles(B, T, C) + 1), gb(nbank * C * 3), ga(nbank * C * 2);
    const F* zp = withzi ? zi.data() : nullptr;
    forward<F>(x.data(), B, T, b.data(), a.data(), C, zp, y.data(), zf.data(), nt, useck ? ck.data() : nullptr, pe);
    backward<F>(x.data(), B, T, b.data(), a.data(), C, zp, gy.data(), withzi ? gzf.data() : nullptr, gx.data(),
                gb.data(), ga.data(), gzi.data(), nt, useck ? ck.data() : nullptr, pe);
    // misaligned output
    std::vector<F> y2(B * C * T + 3);
    forward<F>(x.data(), B, T, b.data(), a.data(), C, zp, y2.data() + 1, nullptr, nt, nullptr, pe);
    dump(f, y); dump(f, zf); dump(f, gx); dump(f, gb); dump(f, ga); dump(f, gzi);
    std::fwrite(y2.data() + 1, sizeof(F), B * C * T, f);
}
int main(int argc, char** argv) {
    std::FILE* f = std::fopen(argv[1], "wb");
    std::mt19937_64 gen(1);
    const int64_t Ts[] = {0, 1, 2, 3, 17, 127, 128, 129, 300, 1001, 4096};
    const int64_t Cs[] = {1, 3, 5, 8, 12, 16, 17, 33};
    const int64_t Bs[] = {1, 2, 5};
    int n = 0;
    for (int64_t T : Ts) for (int64_t C : Cs) for (int64_t B : Bs) for (int nt = 1; nt <= 2; ++nt) {
        const bool pe = (n % 3) == 1, useck = (n % 2) == 0, wz = (n % 5) != 3;
        one<float>(f, B, C, T, pe, nt, useck, wz, gen);
        one<double>(f, B, C, T, !pe, nt, !useck, wz, gen);
        ++n;
    }
    // the bench shape, large enough for streaming stores
    for (int nt = 1; nt <= 2; ++nt) { one<float>(f, 32, 16, 20000, nt == 2, nt, true, true, gen); one<double>(f, 8, 16, 20000, false, nt, nt == 1, true, gen); }
    one<float>(f, 32, 16, 20000, false, 2, false, true, gen);
    std::fclose(f);
    std::printf("%s %d cases\n", isa_name(), n);
}
