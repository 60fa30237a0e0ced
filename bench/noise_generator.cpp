// The envelope op's noise generator alone (cpp/counter_rng.h), per x86 path:
// nanoseconds per normal of 16 channels x 2^20 samples, as the kernels use it
// (rng::normals on 4 groups of 4 samples, converted to double and stored in
// rows of 16 channels, as FrameNoise does), and of its Philox4x32-7 part alone
// (the same words converted and stored without the Box-Muller transform).
// Process CPU time, best of 15.  Build and run (from the repository root):
//
//   g++ -O3 -std=c++17 -fno-math-errno -ffp-contract=off -Wno-psabi -Icpp
//       bench/noise_generator.cpp -o /tmp/noise_generator && /tmp/noise_generator
//
// (the flags of the kernels, CMakeLists.txt).  A path the CPU lacks is
// reported as not available.
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

#include "counter_rng.h"

using namespace learnafe::rng;

namespace {

constexpr int kW = 16;       // channels per row (one kernel unit)
constexpr int kGroups = 4;   // groups of 4 samples per call (kNoiseGroups)
constexpr int kRows = 1024;  // rows of the ring the rows are stored into (stays in L1/L2)

template <int NS, bool Transform>
inline __attribute__((always_inline)) void generate(uint64_t seed, int64_t T, double* buf) {
    typedef typename Lanes<NS>::vf vf;
    typedef typename Lanes<NS>::vu vu;
    typedef typename Lanes<NS>::vu32 vu32;
    typedef typename Lanes<NS>::vi32 vi32;
    typedef double vd __attribute__((vector_size(16 * NS)));
    constexpr int K = kGroups;
    const PhiloxKey<NS> key(seed);
    for (int64_t j = 0; j < T / 4; j += K) {
        double* row = buf + ((j * 4) % kRows) * kW;
        for (int s = 0; s < kW / (2 * NS); ++s) {
            vf o[K][4];
            if constexpr (Transform) {
                normals<NS, K>(key, 3, static_cast<uint64_t>(s * 2 * NS), static_cast<uint64_t>(j), o);
            } else {
                vu w[2 * K][4] = {};
                const vu iota = lane_index<NS>(std::make_index_sequence<NS>());
                for (int k = 0; k < 2 * K; ++k) {
                    w[k][0] = vu{} + uint64_t(j + k / 2);
                    w[k][1] = iota + uint64_t(s * 2 * NS + (k % 2) * NS);
                    w[k][2] = vu{} + uint64_t(3);
                    w[k][3] = vu{};
                }
                philox_lanes<NS, 2 * K>(w, key);
                for (int k = 0; k < K; ++k)
                    for (int i = 0; i < 4; ++i) {
                        const vu32 r = join_words<NS>(w[2 * k][i], w[2 * k + 1][i], std::make_index_sequence<2 * NS>());
                        o[k][i] = __builtin_convertvector(bit_cast<vi32>(r), vf);
                    }
            }
            for (int k = 0; k < K; ++k)
                for (int r = 0; r < 4; ++r) {
                    const vd d = __builtin_convertvector(o[k][r], vd);
                    std::memcpy(row + (4 * k + r) * kW + s * 2 * NS, &d, sizeof(vd));
                }
        }
    }
}

#define LAFE_AVX2 __attribute__((target("avx2,fma")))
#define LAFE_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))

LAFE_AVX2 void avx2_full(uint64_t s, int64_t T, double* b) { generate<4, true>(s, T, b); }
LAFE_AVX2 void avx2_philox(uint64_t s, int64_t T, double* b) { generate<4, false>(s, T, b); }
LAFE_AVX512 void avx512_full(uint64_t s, int64_t T, double* b) { generate<8, true>(s, T, b); }
LAFE_AVX512 void avx512_philox(uint64_t s, int64_t T, double* b) { generate<8, false>(s, T, b); }

double best_ns(void (*f)(uint64_t, int64_t, double*), int64_t T, double* buf) {
    double best = 1e30;
    for (int r = 0; r < 15; ++r) {
        const std::clock_t c = std::clock();
        f(static_cast<uint64_t>(r), T, buf);
        const double dt = double(std::clock() - c) / CLOCKS_PER_SEC;
        best = dt < best ? dt : best;
    }
    return best / (double(kW) * double(T)) * 1e9;
}

}  // namespace

int main() {
    const int64_t T = int64_t(1) << 20;
    std::vector<double> buf((kRows + 4 * kGroups) * kW);
    __builtin_cpu_init();
    const bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
    std::printf("path     generator ns/normal   Philox4x32-7 alone ns/word\n");
    if (has2)
        std::printf("avx2     %8.3f              %8.3f\n", best_ns(avx2_full, T, buf.data()),
                    best_ns(avx2_philox, T, buf.data()));
    else
        std::printf("avx2     not available\n");
    if (has512)
        std::printf("avx512   %8.3f              %8.3f\n", best_ns(avx512_full, T, buf.data()),
                    best_ns(avx512_philox, T, buf.data()));
    else
        std::printf("avx512   not available\n");
    double sum = 0;
    for (double v : buf) sum += v;
    std::printf("(checksum %.6g)\n", sum);
    return 0;
}
