// The one Python binding file of LearnAFE.  Kernels live in the other cpp/
// files and know nothing of Python; this file only converts buffers and
// arguments, releases the GIL and forwards.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "parallel.h"
#include "xylo_filterbank.h"

namespace py = pybind11;

// --- xylo: buffers <-> learnafe::xylo ---
namespace {
using I64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

py::tuple xylo_filterbank_py(I64Array x, I64Array a1, I64Array a2, I64Array B_b, I64Array B_af,
                             I64Array B_wf, I64Array B_in, I64Array B_w, I64Array B_out,
                             bool prepend_reversed, int num_threads) {
    if (x.ndim() != 2) throw std::invalid_argument("x must be [B, T]");
    const int64_t B = x.shape(0), T = x.shape(1), C = a1.size();
    for (const I64Array* p : {&a2, &B_b, &B_af, &B_wf, &B_in, &B_w, &B_out})
        if (p->size() != C) throw std::invalid_argument("channel parameter arrays differ in length");
    std::vector<learnafe::xylo::Channel> ch(C);
    for (int64_t c = 0; c < C; ++c)
        ch[c] = {a1.data()[c], a2.data()[c], int32_t(B_b.data()[c]), int32_t(B_af.data()[c]),
                 int32_t(B_wf.data()[c]), int32_t(B_in.data()[c]), int32_t(B_w.data()[c]),
                 int32_t(B_out.data()[c])};
    py::array_t<int64_t> y({B, C, T});
    py::array_t<int32_t> kind({B, C});
    py::array_t<int64_t> where({B, C});
    {
        py::gil_scoped_release nogil;
        learnafe::xylo::filterbank(x.data(), B, T, ch.data(), C, prepend_reversed,
                                   y.mutable_data(), kind.mutable_data(), where.mutable_data(),
                                   num_threads);
    }
    return py::make_tuple(y, kind, where);
}

py::array_t<int64_t> xylo_spike_raster_py(I64Array y, I64Array rate_shift1, I64Array rate_shift2,
                                          I64Array low_pass_shift, I64Array eps,
                                          I64Array fixed_threshold,
                                          py::array_t<uint8_t, py::array::c_style | py::array::forcecast> adaptive,
                                          bool joint_normalization, int64_t raster_factor,
                                          int64_t max_spikes, bool prepend_reversed,
                                          int num_threads) {
    if (y.ndim() != 3) throw std::invalid_argument("y must be [B, C, T]");
    if (raster_factor < 1) throw std::invalid_argument("raster_factor must be >= 1");
    const int64_t B = y.shape(0), C = y.shape(1), T = y.shape(2);
    for (const I64Array* p : {&rate_shift1, &rate_shift2, &low_pass_shift, &eps, &fixed_threshold})
        if (p->size() != C) throw std::invalid_argument("channel parameter arrays differ in length");
    if (adaptive.size() != C) throw std::invalid_argument("adaptive must have one entry per channel");
    const learnafe::xylo::SpikeConfig cfg{rate_shift1.data(), rate_shift2.data(),
                                          low_pass_shift.data(), eps.data(),
                                          fixed_threshold.data(), adaptive.data(),
                                          joint_normalization, raster_factor, max_spikes};
    const int64_t F = learnafe::xylo::raster_frames(T, raster_factor);
    py::array_t<int64_t> counts({B, F, C});
    {
        py::gil_scoped_release nogil;
        learnafe::xylo::spike_raster(y.data(), B, C, T, cfg, prepend_reversed,
                                     counts.mutable_data(), num_threads);
    }
    return counts;
}
}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "LearnAFE compiled kernels (raw buffers in, raw buffers out; no libtorch).";
    m.def("omp_default_threads", &learnafe::omp_default_threads,
          "Threads an OpenMP region uses by default in this process.");
    // --- biquad filter bank + fused envelope (ops) ---
    // --- XyloAudio 3 fixed-point filter bank (xylo) ---
    m.def("xylo_filterbank", &xylo_filterbank_py,
          "XyloAudio 3 fixed-point bank: x int64 [B, T] -> (y int64 [B, C, T], overflow kind "
          "int32 [B, C], first overflow sample int64 [B, C]).");
    m.def("xylo_spike_raster", &xylo_spike_raster_py,
          "XyloAudio 3 divisive-normalisation spikes, rastered: y int64 [B, C, T] -> counts "
          "int64 [B, F, C].");
}
