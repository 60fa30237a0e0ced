// OpenMP helpers shared by the kernels.
#pragma once

#include <cstddef>

namespace learnafe {

// Number of threads OpenMP would use for a parallel region by default.
int omp_default_threads();

// Resolve a user request: n <= 0 means "OpenMP default".
int resolve_threads(int n);

// Hint that a large output buffer about to be written should be backed by
// transparent huge pages (Linux, THP in "madvise" mode): one page fault per
// 2 MiB instead of per 4 KiB on first touch.  No-op elsewhere or for small
// buffers; never fails.
void advise_huge_pages(void* data, std::size_t bytes);

}  // namespace learnafe
