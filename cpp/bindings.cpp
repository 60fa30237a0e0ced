// The one Python binding file of LearnAFE.  Kernels live in the other cpp/
// files and know nothing of Python; this file only converts buffers and
// arguments, releases the GIL and forwards.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "parallel.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
    m.doc() = "LearnAFE compiled kernels (raw buffers in, raw buffers out; no libtorch).";
    m.def("omp_default_threads", &learnafe::omp_default_threads,
          "Threads an OpenMP region uses by default in this process.");
    // --- biquad filter bank + fused envelope (ops) ---
    // --- XyloAudio 3 fixed-point filter bank (xylo) ---
}
