// Process CPU time for the C++ benchmark harnesses of bench/ (included by each).
#pragma once

#include <algorithm>
#include <ctime>

namespace bench {

// Process CPU time in seconds (all threads).
inline double cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Best CPU time of `repeats` calls of fn, after one untimed warm-up call.
template <class Fn>
double best_of(int repeats, Fn fn) {
    fn();
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
        const double t = cpu_seconds();
        fn();
        best = std::min(best, cpu_seconds() - t);
    }
    return best;
}

}  // namespace bench
