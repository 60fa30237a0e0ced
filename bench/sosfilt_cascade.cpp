// The fused sosfilt cascade kernels (cpp/sosfilt_cascade.h) alone, on the
// bench's sizes: a bank of C = 16 cascades of S sections filtering one shared
// float32 input per batch item (u [32, 1, T], b/a [1, 16, S, *]), forward and
// backward (the adjoint), process CPU time, best of R runs, 1 thread, on the
// path LEARNAFE_ISA picks (avx2, generic; unset: the best one).  Prints the
// times, ns per lane and section-sample, and a checksum of every output bit
// (the same on every path when the kernels are bitwise reproducible).  Build
// and run (from the repository root):
//
//   g++ -O3 -std=c++17 -fopenmp -fno-math-errno -ffp-contract=off -Wno-psabi -Icpp
//       bench/sosfilt_cascade.cpp cpp/sosfilt_cascade.cpp cpp/biquad_dispatch.cpp cpp/parallel.cpp
//       -o /tmp/sosfilt_cascade && /tmp/sosfilt_cascade [T] [S] [R]
//
// (the flags of the kernels, CMakeLists.txt).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "cpu_time.h"
#include "sosfilt_cascade.h"

namespace learnafe {
namespace biquad {
const char* isa_name();
}
}  // namespace learnafe

using learnafe::sosfilt::Cascade;

namespace {

using bench::cpu_seconds;

// FNV-1a over the bytes of a buffer.
template <class T>
uint64_t checksum(const std::vector<T>& v, uint64_t h = 1469598103934665603ull) {
    const unsigned char* q = reinterpret_cast<const unsigned char*>(v.data());
    for (size_t i = 0; i < v.size() * sizeof(T); ++i) h = (h ^ q[i]) * 1099511628211ull;
    return h;
}

// A deterministic value in [-1, 1).
double lcg(uint64_t& s) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

}  // namespace

int main(int argc, char** argv) {
    const int64_t T = argc > 1 ? std::atoll(argv[1]) : 20000;
    const int64_t S = argc > 2 ? std::atoll(argv[2]) : 4;
    const int R = argc > 3 ? std::atoi(argv[3]) : 10;
    const int64_t B = 32, C = 16;
    uint64_t seed = 12345;
    std::vector<float> u(static_cast<size_t>(B * T)), gy(static_cast<size_t>(B * C * T));
    for (auto& v : u) v = static_cast<float>(lcg(seed));
    for (auto& v : gy) v = static_cast<float>(lcg(seed));
    // stable sections: poles at radius 0.6-0.95, angles spread over the band
    std::vector<double> b(static_cast<size_t>(C * S * 3)), a(static_cast<size_t>(C * S * 2));
    for (int64_t j = 0; j < C * S; ++j) {
        const double r = 0.6 + 0.35 * (0.5 + 0.5 * lcg(seed)), th = 3.0 * (0.5 + 0.5 * lcg(seed));
        a[j * 2] = -2.0 * r * std::cos(th);
        a[j * 2 + 1] = r * r;
        for (int k = 0; k < 3; ++k) b[j * 3 + k] = 0.5 * lcg(seed);
    }
    Cascade<float> c{u.data(), B, 1, C, T, S, 1, b.data(), a.data(), nullptr};
    std::vector<float> y(static_cast<size_t>(B * C * T)), gu(static_cast<size_t>(B * T));
    std::vector<double> gb(static_cast<size_t>(C * S * 3)), ga(static_cast<size_t>(C * S * 2));
    std::vector<double> ck(static_cast<size_t>(learnafe::sosfilt::checkpoint_doubles(B, C, T, S)));
    std::vector<float> gu2(gu.size());
    std::vector<double> gb2(gb.size()), ga2(ga.size());
    double fwd = 1e30, bwd = 1e30, fwd_ck = 1e30, bwd_ck = 1e30;
    for (int r = 0; r < R; ++r) {
        double t = cpu_seconds();
        learnafe::sosfilt::cascade_forward(c, y.data(), static_cast<float*>(nullptr), 1);
        fwd = std::min(fwd, cpu_seconds() - t);
        t = cpu_seconds();
        learnafe::sosfilt::cascade_backward(c, gy.data(), static_cast<const float*>(nullptr), gu.data(),
                                            gb.data(), ga.data(), static_cast<float*>(nullptr), 1);
        bwd = std::min(bwd, cpu_seconds() - t);
        // the autograd path: the forward keeps the block checkpoints, the backward reads them
        t = cpu_seconds();
        learnafe::sosfilt::cascade_forward(c, y.data(), static_cast<float*>(nullptr), 1, ck.data());
        fwd_ck = std::min(fwd_ck, cpu_seconds() - t);
        t = cpu_seconds();
        learnafe::sosfilt::cascade_backward(c, gy.data(), static_cast<const float*>(nullptr), gu2.data(),
                                            gb2.data(), ga2.data(), static_cast<float*>(nullptr), 1, ck.data());
        bwd_ck = std::min(bwd_ck, cpu_seconds() - t);
    }
    const double per = 1e9 / (static_cast<double>(B) * C * T * S);
    std::printf("%s T=%lld S=%lld best of %d: forward %.2f ms (%.3f ns/lane-section-sample), "
                "backward %.2f ms (%.3f ns), backward/forward %.2f\n",
                learnafe::biquad::isa_name(), static_cast<long long>(T), static_cast<long long>(S), R, 1e3 * fwd,
                fwd * per, 1e3 * bwd, bwd * per, bwd / fwd);
    std::printf("kept checkpoints: forward %.2f ms, backward %.2f ms, forward+backward %.2f ms (%.2f ms without)\n",
                1e3 * fwd_ck, 1e3 * bwd_ck, 1e3 * (fwd_ck + bwd_ck), 1e3 * (fwd + bwd));
    const bool same = gu == gu2 && gb == gb2 && ga == ga2;
    std::printf("checksum y %016llx gu %016llx gb %016llx ga %016llx (kept checkpoints: %s)\n",
                static_cast<unsigned long long>(checksum(y)), static_cast<unsigned long long>(checksum(gu)),
                static_cast<unsigned long long>(checksum(gb)), static_cast<unsigned long long>(checksum(ga)),
                same ? "bitwise the same" : "DIFFERENT");
    return 0;
}
