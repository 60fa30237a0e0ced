#include "parallel.h"

#include <omp.h>

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace learnafe {

int omp_default_threads() { return omp_get_max_threads(); }

int resolve_threads(int n) { return n > 0 ? n : omp_get_max_threads(); }

void advise_huge_pages(void* data, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    constexpr std::uintptr_t kHuge = std::uintptr_t(2) << 20;
    if (bytes < 2 * kHuge) return;
    const std::uintptr_t lo = (reinterpret_cast<std::uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
    const std::uintptr_t hi = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(kHuge - 1);
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
    (void)data;
    (void)bytes;
#endif
}

}  // namespace learnafe
