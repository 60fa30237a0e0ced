// CPU-time harness of the XyloAudio 3 kernels: learnafe::xylo::filterbank and
// spike_features on the bench's batch (8 signals x 48,000 samples, the chip's
// 16 default channels, reverse-and-prepend, one thread), best of many calls.
// Build against the developer build's kernel library and run per ISA path:
//   g++ -O2 -fopenmp -Icpp bench/xylo_harness.cpp build/dev/liblearnafe_kernels.a -o xylo_harness
//   LEARNAFE_ISA=avx2 ./xylo_harness; LEARNAFE_ISA=avx512 ./xylo_harness
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cpu_time.h"
#include "xylo_filterbank.h"

using namespace learnafe::xylo;

using bench::best_of;

int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 30;
    // rockpool's 16 default channels (a1, a2, B_b, B_af); B_wf 8, B_in 14, B_w = B_out.
    const int64_t table[16][5] = {
        {-32694, 16313, 8, 6, 29}, {-32663, 16284, 8, 6, 28}, {-32617, 16244, 7, 7, 28},
        {-32551, 16188, 7, 7, 27}, {-32453, 16110, 6, 8, 27}, {-32305, 16000, 6, 8, 26},
        {-32077, 15848, 5, 9, 26}, {-31718, 15638, 5, 9, 25}, {-31139, 15347, 4, 10, 25},
        {-30185, 14947, 4, 10, 24}, {-28582, 14402, 4, 10, 24}, {-25862, 13666, 3, 11, 24},
        {-21262, 12687, 3, 11, 24}, {-27375, 22803, 2, 13, 24}, {-4180, 19488, 2, 13, 24},
        {25566, 15280, 1, 14, 24}};
    const int64_t B = 8, T = 48000, C = 16;
    std::vector<Channel> ch(C);
    for (int c = 0; c < C; ++c)
        ch[c] = {table[c][0], table[c][1], int32_t(table[c][2]), int32_t(table[c][3]), 8, 14,
                 int32_t(table[c][4]), int32_t(table[c][4])};
    std::mt19937_64 rng(0);
    std::vector<int64_t> x(B * T);
    for (auto& v : x) v = int64_t(rng() % 16383) - 8191;
    std::vector<int64_t> y(B * C * T);
    std::vector<int32_t> kind(B * C);
    std::vector<int64_t> where(B * C);
    std::vector<int64_t> lps(C, 12), eps(C, 1), b1(C, 6), b2(C, 0), fixed(C, int64_t(1) << 27);
    std::vector<uint8_t> adaptive(C, 1);
    SpikeConfig cfg{b1.data(), b2.data(), lps.data(), eps.data(), fixed.data(), adaptive.data(), true, 50, 15};
    std::vector<int64_t> counts(B * raster_frames(T, 50) * C);
    const double tb = best_of(reps, [&] {
        filterbank(x.data(), B, T, ch.data(), C, true, {y.data(), kind.data(), where.data()}, 1);
    });
    const double ts = best_of(reps, [&] {
        spike_raster(y.data(), B, C, T, cfg, true, counts.data(), 1);
    });
    const double tf = best_of(reps, [&] {
        spike_features(x.data(), B, T, ch.data(), C, cfg, true, counts.data(), kind.data(), where.data(), 1);
    });
    int64_t sum = 0;
    for (auto v : counts) sum += v;
    std::printf("bank %.2f ms  spike_raster(y) %.2f ms  fused features %.2f ms  (counts sum %lld)\n",
                1e3 * tb, 1e3 * ts, 1e3 * tf, (long long)sum);
    return 0;
}
