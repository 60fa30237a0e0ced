// OpenMP helpers shared by the kernels.
#pragma once

namespace learnafe {

// Number of threads OpenMP would use for a parallel region by default.
int omp_default_threads();

// Resolve a user request: n <= 0 means "OpenMP default".
int resolve_threads(int n);

}  // namespace learnafe
