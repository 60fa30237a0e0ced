#include "parallel.h"

#include <omp.h>

namespace learnafe {

int omp_default_threads() { return omp_get_max_threads(); }

int resolve_threads(int n) { return n > 0 ? n : omp_get_max_threads(); }

}  // namespace learnafe
