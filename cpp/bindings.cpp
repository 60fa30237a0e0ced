// The one Python binding file of LearnAFE.  Kernels live in the other cpp/
// files and know nothing of Python; this file only converts buffers and
// arguments, releases the GIL and forwards.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>

#include "biquad_filterbank.h"
#include "counter_rng.h"
#include "parallel.h"
#include "sosfilt_cascade.h"
#include "xylo_filterbank.h"

namespace py = pybind11;

// --- xylo: buffers <-> learnafe::xylo ---
namespace {
using I64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// The per-channel register arrays as kernel channels, checked for equal length.
std::vector<learnafe::xylo::Channel> channels(const I64Array& a1, const I64Array& a2, const I64Array& B_b,
                                              const I64Array& B_af, const I64Array& B_wf, const I64Array& B_in,
                                              const I64Array& B_w, const I64Array& B_out) {
    const int64_t C = a1.size();
    for (const I64Array* p : {&a2, &B_b, &B_af, &B_wf, &B_in, &B_w, &B_out})
        if (p->size() != C) throw std::invalid_argument("channel parameter arrays differ in length");
    std::vector<learnafe::xylo::Channel> ch(C);
    for (int64_t c = 0; c < C; ++c)
        ch[c] = {a1.data()[c], a2.data()[c], int32_t(B_b.data()[c]), int32_t(B_af.data()[c]),
                 int32_t(B_wf.data()[c]), int32_t(B_in.data()[c]), int32_t(B_w.data()[c]),
                 int32_t(B_out.data()[c])};
    return ch;
}

py::tuple xylo_filterbank_py(I64Array x, I64Array a1, I64Array a2, I64Array B_b, I64Array B_af,
                             I64Array B_wf, I64Array B_in, I64Array B_w, I64Array B_out,
                             bool prepend_reversed, int num_threads, py::object out,
                             bool reused_out) {
    if (x.ndim() != 2) throw std::invalid_argument("x must be [B, T]");
    const int64_t B = x.shape(0), T = x.shape(1), C = a1.size();
    const auto ch = channels(a1, a2, B_b, B_af, B_wf, B_in, B_w, B_out);
    // `out`: None, or a writeable C-contiguous int64 [B, C, T] array to fill.
    py::array_t<int64_t> y;
    if (out.is_none()) {
        y = py::array_t<int64_t>({B, C, T});
    } else {
        if (!py::isinstance<py::array_t<int64_t>>(out))
            throw std::invalid_argument("out must be an int64 array");
        y = out.cast<py::array_t<int64_t>>();
        if (y.ndim() != 3 || y.shape(0) != B || y.shape(1) != C || y.shape(2) != T)
            throw std::invalid_argument("out must have shape [B, C, T] of the result");
        if (!(y.flags() & py::array::c_style) || !y.writeable())
            throw std::invalid_argument("out must be C-contiguous and writeable");
    }
    py::array_t<int32_t> kind({B, C});
    py::array_t<int64_t> where({B, C});
    {
        py::gil_scoped_release nogil;
        learnafe::xylo::filterbank(x.data(), B, T, ch.data(), C, prepend_reversed,
                                   {y.mutable_data(), kind.mutable_data(), where.mutable_data(),
                                    reused_out && !out.is_none()},
                                   num_threads);
    }
    return py::make_tuple(y, kind, where);
}

// The spike generator's settings, checked: one value per channel for every array.  The
// config points into the arrays, which outlive it (they are the caller's arguments).
learnafe::xylo::SpikeConfig spike_config(
        int64_t C, const I64Array& rate_shift1, const I64Array& rate_shift2,
        const I64Array& low_pass_shift, const I64Array& eps, const I64Array& fixed_threshold,
        const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& adaptive,
        bool joint_normalization, int64_t raster_factor, int64_t max_spikes) {
    if (raster_factor < 1) throw std::invalid_argument("raster_factor must be >= 1");
    for (const I64Array* p : {&rate_shift1, &rate_shift2, &low_pass_shift, &eps, &fixed_threshold})
        if (p->size() != C) throw std::invalid_argument("channel parameter arrays differ in length");
    if (adaptive.size() != C) throw std::invalid_argument("adaptive must have one entry per channel");
    return {rate_shift1.data(), rate_shift2.data(), low_pass_shift.data(), eps.data(),
            fixed_threshold.data(), adaptive.data(), joint_normalization, raster_factor, max_spikes};
}

py::array_t<int64_t> xylo_spike_raster_py(I64Array y, I64Array rate_shift1, I64Array rate_shift2,
                                          I64Array low_pass_shift, I64Array eps,
                                          I64Array fixed_threshold,
                                          py::array_t<uint8_t, py::array::c_style | py::array::forcecast> adaptive,
                                          bool joint_normalization, int64_t raster_factor,
                                          int64_t max_spikes, bool prepend_reversed,
                                          int num_threads) {
    if (y.ndim() != 3) throw std::invalid_argument("y must be [B, C, T]");
    const int64_t B = y.shape(0), C = y.shape(1), T = y.shape(2);
    const auto cfg = spike_config(C, rate_shift1, rate_shift2, low_pass_shift, eps, fixed_threshold,
                                  adaptive, joint_normalization, raster_factor, max_spikes);
    const int64_t F = learnafe::xylo::raster_frames(T, raster_factor);
    py::array_t<int64_t> counts({B, F, C});
    {
        py::gil_scoped_release nogil;
        learnafe::xylo::spike_raster(y.data(), B, C, T, cfg, prepend_reversed,
                                     counts.mutable_data(), num_threads);
    }
    return counts;
}
py::tuple xylo_spike_features_py(I64Array x, I64Array a1, I64Array a2, I64Array B_b, I64Array B_af,
                                  I64Array B_wf, I64Array B_in, I64Array B_w, I64Array B_out,
                                  I64Array rate_shift1, I64Array rate_shift2,
                                  I64Array low_pass_shift, I64Array eps, I64Array fixed_threshold,
                                  py::array_t<uint8_t, py::array::c_style | py::array::forcecast> adaptive,
                                  bool joint_normalization, int64_t raster_factor,
                                  int64_t max_spikes, bool prepend_reversed, int num_threads) {
    if (x.ndim() != 2) throw std::invalid_argument("x must be [B, T]");
    const int64_t B = x.shape(0), T = x.shape(1), C = a1.size();
    const auto cfg = spike_config(C, rate_shift1, rate_shift2, low_pass_shift, eps, fixed_threshold,
                                  adaptive, joint_normalization, raster_factor, max_spikes);
    const auto ch = channels(a1, a2, B_b, B_af, B_wf, B_in, B_w, B_out);
    const int64_t F = learnafe::xylo::raster_frames(T, raster_factor);
    py::array_t<int64_t> counts({B, F, C});
    py::array_t<int32_t> kind({B, C});
    py::array_t<int64_t> where({B, C});
    {
        py::gil_scoped_release nogil;
        learnafe::xylo::spike_features(x.data(), B, T, ch.data(), C, cfg, prepend_reversed,
                                       counts.mutable_data(), kind.mutable_data(),
                                       where.mutable_data(), num_threads);
    }
    return py::make_tuple(counts, kind, where);
}
}  // namespace

// --- ops: biquad filter bank + fused envelope --------------------------------
// Python (learnafe.ops) validates and allocates; these functions check the
// buffer layout again (dtype, C order, shape) and run the kernels without the
// GIL.  Signals are float32 or float64 (suffix); coefficients and their
// gradients are always float64.
namespace ops_binding {

using learnafe::biquad::Rectify;

template <class F>
F* buffer(const py::object& obj, const char* name, std::initializer_list<py::ssize_t> shape,
          bool optional = false) {
    if (obj.is_none()) {
        if (optional) return nullptr;
        throw py::value_error(std::string(name) + " must not be None");
    }
    py::array arr = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<F>>(arr) || !arr.dtype().is(py::dtype::of<F>()))
        throw py::type_error(std::string(name) + ": expected dtype " +
                             std::string(py::str(py::dtype::of<F>())) + ", got " +
                             std::string(py::str(arr.dtype())));
    if (!(arr.flags() & py::array::c_style))
        throw py::value_error(std::string(name) + " must be C-contiguous");
    if (arr.ndim() != static_cast<py::ssize_t>(shape.size()))
        throw py::value_error(std::string(name) + ": wrong number of dimensions");
    py::ssize_t i = 0;
    for (py::ssize_t s : shape) {
        if (arr.shape(i) != s) throw py::value_error(std::string(name) + ": wrong shape");
        ++i;
    }
    return static_cast<F*>(arr.mutable_data());
}

// Optional checkpoint buffer (float64, biquad_checkpoint_size(B, T, C) values).
inline double* checkpoints(const py::object& obj, int64_t B, int64_t T, int64_t C) {
    if (obj.is_none()) return nullptr;
    return buffer<double>(obj, "checkpoints", {learnafe::biquad::checkpoint_doubles(B, T, C)});
}

// Coefficients b [C, 3], a [C, 2] shared by the batch, or b [B, C, 3],
// a [B, C, 2] per example (b.ndim() == 3); grad_b / grad_a have the shape
// of b / a.
struct Coefs {
    bool per_example = false;
    py::ssize_t C = 0;
};
inline Coefs coefs_of(const py::array& b) {
    Coefs r;
    r.per_example = b.ndim() == 3;
    if (b.ndim() != 2 && b.ndim() != 3) throw py::value_error("b must be [C, 3] or [B, C, 3]");
    r.C = b.shape(b.ndim() - 2);
    return r;
}
inline double* coef_buffer(const py::object& obj, const char* name, const Coefs& k, py::ssize_t B,
                           py::ssize_t n) {
    return k.per_example ? buffer<double>(obj, name, {B, k.C, n}) : buffer<double>(obj, name, {k.C, n});
}

template <class F>
void forward(py::array x, py::array b, py::array a, py::object zi, py::array y, py::object zf,
             int num_threads, py::object ck) {
    const Coefs k = coefs_of(b);
    const auto B = x.shape(0), T = x.shape(1), C = k.C;
    const F* px = buffer<F>(x, "x", {B, T});
    const double* pb = coef_buffer(b, "b", k, B, 3);
    const double* pa = coef_buffer(a, "a", k, B, 2);
    const F* pzi = buffer<F>(zi, "zi", {B, C, 2}, true);
    F* py_ = buffer<F>(y, "y", {B, C, T});
    F* pzf = buffer<F>(zf, "zf", {B, C, 2}, true);
    double* pck = checkpoints(ck, B, T, C);
    py::gil_scoped_release nogil;
    learnafe::biquad::forward<F>(px, B, T, pb, pa, C, pzi, py_, pzf, num_threads, pck,
                                 k.per_example);
}

template <class F>
void backward(py::array x, py::array b, py::array a, py::object zi, py::array gy, py::object gzf,
              py::array gx, py::array gb, py::array ga, py::object gzi, int num_threads,
              py::object ck) {
    const Coefs k = coefs_of(b);
    const auto B = x.shape(0), T = x.shape(1), C = k.C;
    const F* px = buffer<F>(x, "x", {B, T});
    const double* pb = coef_buffer(b, "b", k, B, 3);
    const double* pa = coef_buffer(a, "a", k, B, 2);
    const F* pzi = buffer<F>(zi, "zi", {B, C, 2}, true);
    const F* pgy = buffer<F>(gy, "grad_y", {B, C, T});
    const F* pgzf = buffer<F>(gzf, "grad_zf", {B, C, 2}, true);
    F* pgx = buffer<F>(gx, "grad_x", {B, T});
    double* pgb = coef_buffer(gb, "grad_b", k, B, 3);
    double* pga = coef_buffer(ga, "grad_a", k, B, 2);
    F* pgzi = buffer<F>(gzi, "grad_zi", {B, C, 2}, true);
    const double* pck = checkpoints(ck, B, T, C);
    py::gil_scoped_release nogil;
    learnafe::biquad::backward<F>(px, B, T, pb, pa, C, pzi, pgy, pgzf, pgx, pgb, pga, pgzi,
                                  num_threads, pck, k.per_example);
}

inline Rectify rectify_of(const std::string& r) {
    if (r == "abs") return Rectify::Abs;
    if (r == "square") return Rectify::Square;
    throw py::value_error("rectify must be 'abs' or 'square', got '" + r + "'");
}

// ck: None or float64 [B, envelope_checkpoint_size(C, T, hop)].
inline double* checkpoint_buffer(const py::object& ck, py::ssize_t B, py::ssize_t C, py::ssize_t T,
                                 py::ssize_t hop) {
    return buffer<double>(ck, "ck", {B, learnafe::biquad::envelope_checkpoint_size(C, T, hop)}, true);
}

// noise_std: None, float64 [C] (shared by the batch) or [B, C] (per batch item).
inline bool std_per_example(const py::object& s) {
    return !s.is_none() && py::cast<py::array>(s).ndim() == 2;
}
inline double* std_buffer(const py::object& s, const char* name, bool per_example, py::ssize_t B,
                          py::ssize_t C) {
    return per_example ? buffer<double>(s, name, {B, C}, true) : buffer<double>(s, name, {C}, true);
}

template <class F>
void envelope_forward(py::array x, py::array b, py::array a, py::ssize_t hop, double alpha,
                      const std::string& rectify, py::array out, int num_threads, py::object noise_std,
                      uint64_t seed, py::object ck, int64_t noise_batch) {
    const Coefs k = coefs_of(b);
    const auto B = x.shape(0), T = x.shape(1), C = k.C;
    if (hop < 1) throw py::value_error("hop must be >= 1");
    const F* px = buffer<F>(x, "x", {B, T});
    const double* pb = coef_buffer(b, "b", k, B, 3);
    const double* pa = coef_buffer(a, "a", k, B, 2);
    const bool sp = std_per_example(noise_std);
    const double* ps = std_buffer(noise_std, "noise_std", sp, B, C);
    F* po = buffer<F>(out, "out", {B, C, T / hop});
    double* pck = checkpoint_buffer(ck, B, C, T, hop);
    const Rectify r = rectify_of(rectify);
    py::gil_scoped_release nogil;
    learnafe::biquad::envelope_forward<F>(px, B, T, pb, pa, C, hop, alpha, r, ps, seed, po, pck,
                                          num_threads, k.per_example, sp, noise_batch);
}

template <class F>
void envelope_backward(py::array x, py::array b, py::array a, py::ssize_t hop, double alpha,
                       const std::string& rectify, py::array gout, py::array gx, py::array gb,
                       py::array ga, int num_threads, py::object noise_std, uint64_t seed,
                       py::object gstd, py::object ck, int64_t noise_batch) {
    const Coefs k = coefs_of(b);
    const auto B = x.shape(0), T = x.shape(1), C = k.C;
    if (hop < 1) throw py::value_error("hop must be >= 1");
    const F* px = buffer<F>(x, "x", {B, T});
    const double* pb = coef_buffer(b, "b", k, B, 3);
    const double* pa = coef_buffer(a, "a", k, B, 2);
    const bool sp = std_per_example(noise_std);
    const double* ps = std_buffer(noise_std, "noise_std", sp, B, C);
    const F* pgo = buffer<F>(gout, "grad_out", {B, C, T / hop});
    F* pgx = buffer<F>(gx, "grad_x", {B, T});
    double* pgb = coef_buffer(gb, "grad_b", k, B, 3);
    double* pga = coef_buffer(ga, "grad_a", k, B, 2);
    double* pgs = std_buffer(gstd, "grad_noise_std", sp, B, C);
    const double* pck = checkpoint_buffer(ck, B, C, T, hop);
    const Rectify r = rectify_of(rectify);
    py::gil_scoped_release nogil;
    learnafe::biquad::envelope_backward<F>(px, B, T, pb, pa, C, hop, alpha, r, ps, seed, pck, pgo,
                                           pgx, pgb, pga, pgs, num_threads, k.per_example, sp,
                                           noise_batch);
}

void gaussian_noise(uint64_t seed, py::array out, int num_threads) {
    if (out.ndim() != 3) throw py::value_error("out must be [B, C, T]");
    const auto B = out.shape(0), C = out.shape(1), T = out.shape(2);
    double* po = buffer<double>(out, "out", {B, C, T});
    py::gil_scoped_release nogil;
    learnafe::biquad::gaussian_noise(seed, B, C, T, po, num_threads);
}

py::tuple philox4x32(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key, int rounds) {
    if (rounds < 0) throw py::value_error("rounds must be >= 0, got " + std::to_string(rounds));
    uint32_t o[4];
    learnafe::rng::philox4x32(ctr.data(), key.data(), rounds, o);
    return py::make_tuple(o[0], o[1], o[2], o[3]);
}

// sosfilt cascade: u [B, Cu, T] (Cu 1 or C), b [G, C, S, 3], a [G, C, S, 2] (G 1 or B).
template <class F>
learnafe::sosfilt::Cascade<F> cascade_of(const py::array& u, const py::array& b, const py::array& a,
                                         const py::object& zi) {
    if (u.ndim() != 3) throw py::value_error("u must be [B, Cu, T]");
    if (b.ndim() != 4) throw py::value_error("b must be [G, C, S, 3]");
    const auto B = u.shape(0), Cu = u.shape(1), T = u.shape(2);
    const auto G = b.shape(0), C = b.shape(1), S = b.shape(2);
    if (Cu != 1 && Cu != C) throw py::value_error("u: Cu must be 1 or C (b's channels)");
    if (G != 1 && G != B) throw py::value_error("b: G must be 1 or B (u's batch size)");
    if (S < 1) throw py::value_error("b: S must be >= 1");
    learnafe::sosfilt::Cascade<F> c;
    c.u = buffer<F>(u, "u", {B, Cu, T});
    c.B = B;
    c.Cu = Cu;
    c.C = C;
    c.T = T;
    c.S = S;
    c.G = G;
    c.b = buffer<double>(b, "b", {G, C, S, 3});
    c.a = buffer<double>(a, "a", {G, C, S, 2});
    c.zi = buffer<F>(zi, "zi", {B, C, S, 2}, true);
    return c;
}

template <class F>
void sosfilt_forward(py::array u, py::array b, py::array a, py::object zi, py::array y, py::object zf,
                     int num_threads, py::object ck) {
    const auto c = cascade_of<F>(u, b, a, zi);
    F* py_ = buffer<F>(y, "y", {c.B, c.C, c.T});
    F* pzf = buffer<F>(zf, "zf", {c.B, c.C, c.S, 2}, true);
    double* pck = buffer<double>(ck, "ck", {learnafe::sosfilt::checkpoint_doubles(c.B, c.C, c.T, c.S)}, true);
    py::gil_scoped_release nogil;
    learnafe::sosfilt::cascade_forward<F>(c, py_, pzf, num_threads, pck);
}

template <class F>
void sosfilt_backward(py::array u, py::array b, py::array a, py::object zi, py::array gy, py::object gzf,
                      py::array gu, py::array gb, py::array ga, py::object gzi, int num_threads, py::object ck) {
    const auto c = cascade_of<F>(u, b, a, zi);
    const F* pgy = buffer<F>(gy, "grad_y", {c.B, c.C, c.T});
    const F* pgzf = buffer<F>(gzf, "grad_zf", {c.B, c.C, c.S, 2}, true);
    F* pgu = buffer<F>(gu, "grad_u", {c.B, c.Cu, c.T});
    double* pgb = buffer<double>(gb, "grad_b", {c.G, c.C, c.S, 3});
    double* pga = buffer<double>(ga, "grad_a", {c.G, c.C, c.S, 2});
    F* pgzi = buffer<F>(gzi, "grad_zi", {c.B, c.C, c.S, 2}, true);
    const double* pck = buffer<double>(ck, "ck", {learnafe::sosfilt::checkpoint_doubles(c.B, c.C, c.T, c.S)}, true);
    py::gil_scoped_release nogil;
    learnafe::sosfilt::cascade_backward<F>(c, pgy, pgzf, pgu, pgb, pga, pgzi, num_threads, pck);
}

void bind(py::module_& m) {
    using namespace pybind11::literals;
    m.def("biquad_isa", &learnafe::biquad::isa_name,
          "Instruction set the biquad kernels use on this machine.");
    m.def("biquad_checkpoint_size", &learnafe::biquad::checkpoint_doubles, "B"_a, "T"_a, "C"_a,
          "float64 values of the checkpoint buffer the forward pass can fill for the backward.");
    m.def("biquad_forward_f32", &forward<float>, "x"_a, "b"_a, "a"_a, "zi"_a, "y"_a, "zf"_a,
          "num_threads"_a, "checkpoints"_a = py::none());
    m.def("biquad_forward_f64", &forward<double>, "x"_a, "b"_a, "a"_a, "zi"_a, "y"_a, "zf"_a,
          "num_threads"_a, "checkpoints"_a = py::none());
    m.def("biquad_backward_f32", &backward<float>, "x"_a, "b"_a, "a"_a, "zi"_a, "gy"_a, "gzf"_a,
          "gx"_a, "gb"_a, "ga"_a, "gzi"_a, "num_threads"_a, "checkpoints"_a = py::none());
    m.def("biquad_backward_f64", &backward<double>, "x"_a, "b"_a, "a"_a, "zi"_a, "gy"_a, "gzf"_a,
          "gx"_a, "gb"_a, "ga"_a, "gzi"_a, "num_threads"_a, "checkpoints"_a = py::none());
    const auto none = py::none();
    m.def("envelope_forward_f32", &envelope_forward<float>, "x"_a, "b"_a, "a"_a, "hop"_a,
          "alpha"_a, "rectify"_a, "out"_a, "num_threads"_a, "noise_std"_a = none, "seed"_a = 0,
          "ck"_a = none, "noise_batch"_a = 0);
    m.def("envelope_forward_f64", &envelope_forward<double>, "x"_a, "b"_a, "a"_a, "hop"_a,
          "alpha"_a, "rectify"_a, "out"_a, "num_threads"_a, "noise_std"_a = none, "seed"_a = 0,
          "ck"_a = none, "noise_batch"_a = 0);
    m.def("envelope_backward_f32", &envelope_backward<float>, "x"_a, "b"_a, "a"_a, "hop"_a,
          "alpha"_a, "rectify"_a, "gout"_a, "gx"_a, "gb"_a, "ga"_a, "num_threads"_a,
          "noise_std"_a = none, "seed"_a = 0, "gstd"_a = none, "ck"_a = none,
          "noise_batch"_a = 0);
    m.def("envelope_backward_f64", &envelope_backward<double>, "x"_a, "b"_a, "a"_a, "hop"_a,
          "alpha"_a, "rectify"_a, "gout"_a, "gx"_a, "gb"_a, "ga"_a, "num_threads"_a,
          "noise_std"_a = none, "seed"_a = 0, "gstd"_a = none, "ck"_a = none,
          "noise_batch"_a = 0);
    m.def("envelope_checkpoint_size", &learnafe::biquad::envelope_checkpoint_size, "C"_a, "T"_a,
          "hop"_a, "Doubles per batch item of the envelope op's frame-start state buffer.");
    m.def("gaussian_noise", &gaussian_noise, "seed"_a, "out"_a, "num_threads"_a,
          "Fill float64 out [B, C, T] with the envelope op's noise n[b, c, t] for seed.");
    m.def("philox4x32", &philox4x32, "counter"_a, "key"_a, "rounds"_a = learnafe::rng::kPhiloxRounds,
          "Philox4x32-R of a 4-word counter and a 2-word key (4 uint32 words); R defaults to the "
          "rounds of the envelope op's noise.");
    m.def("sosfilt_checkpoint_size", &learnafe::sosfilt::checkpoint_doubles, "B"_a, "C"_a, "T"_a, "S"_a,
          "float64 values of the block checkpoints sosfilt_forward can keep for sosfilt_backward.");
    m.def("sosfilt_forward_f32", &sosfilt_forward<float>, "u"_a, "b"_a, "a"_a, "zi"_a, "y"_a, "zf"_a,
          "num_threads"_a, "ck"_a = none, "Fused cascade: u [B, Cu, T], b [G, C, S, 3], a [G, C, S, 2] -> y [B, C, T], zf.");
    m.def("sosfilt_forward_f64", &sosfilt_forward<double>, "u"_a, "b"_a, "a"_a, "zi"_a, "y"_a, "zf"_a,
          "num_threads"_a, "ck"_a = none, "Fused cascade: u [B, Cu, T], b [G, C, S, 3], a [G, C, S, 2] -> y [B, C, T], zf.");
    m.def("sosfilt_backward_f32", &sosfilt_backward<float>, "u"_a, "b"_a, "a"_a, "zi"_a, "gy"_a, "gzf"_a,
          "gu"_a, "gb"_a, "ga"_a, "gzi"_a, "num_threads"_a, "ck"_a = none, "Adjoint of sosfilt_forward_f32.");
    m.def("sosfilt_backward_f64", &sosfilt_backward<double>, "u"_a, "b"_a, "a"_a, "zi"_a, "gy"_a, "gzf"_a,
          "gu"_a, "gb"_a, "ga"_a, "gzi"_a, "num_threads"_a, "ck"_a = none, "Adjoint of sosfilt_forward_f64.");
}

}  // namespace ops_binding

PYBIND11_MODULE(_core, m) {
    m.doc() = "LearnAFE compiled kernels (raw buffers in, raw buffers out; no libtorch).";
    m.def("build_info", [] {
        py::dict info;
        info["compiler_id"] = LEARNAFE_CXX_COMPILER_ID;
        info["compiler_version"] = LEARNAFE_CXX_COMPILER_VERSION;
        info["compiler_banner"] = __VERSION__;
        info["build_type"] = LEARNAFE_BUILD_TYPE;
        info["kernel_flags"] = LEARNAFE_KERNEL_FLAGS;
        info["openmp_version"] = LEARNAFE_OPENMP_VERSION;
        return info;
    }, "How the extension was built: compiler id, version and banner, CMake build type, the "
       "kernels' compile flags and the OpenMP version (a dict of str).");
    m.def("omp_default_threads", &learnafe::omp_default_threads,
          "Threads an OpenMP region uses by default in this process.");
    // --- biquad filter bank + fused envelope (ops) ---
    ops_binding::bind(m);
    // --- XyloAudio 3 fixed-point filter bank (xylo) ---
    m.def("xylo_filterbank", &xylo_filterbank_py,
          "XyloAudio 3 fixed-point bank: x int64 [B, T] -> (y int64 [B, C, T], overflow kind "
          "int32 [B, C], first overflow sample int64 [B, C]); y is written into `out` when given "
          "(reused_out: `out` is a reused buffer, so large outputs are written with streaming "
          "stores; a fresh one, its pages just zeroed through the caches, is not).",
          py::arg("x"), py::arg("a1"), py::arg("a2"), py::arg("B_b"), py::arg("B_af"),
          py::arg("B_wf"), py::arg("B_in"), py::arg("B_w"), py::arg("B_out"),
          py::arg("prepend_reversed"), py::arg("num_threads"), py::arg("out") = py::none(),
          py::arg("reused_out") = true);
    m.def("xylo_spike_features", &xylo_spike_features_py,
          "XyloAudio 3 audio -> spike counts in one pass (filter bank + divisive-normalisation "
          "spikes + raster, fused): x int64 [B, T] -> (counts int64 [B, F, C], overflow kind "
          "int32 [B, C], first overflow sample int64 [B, C]).");
    m.def("xylo_spike_raster", &xylo_spike_raster_py,
          "XyloAudio 3 divisive-normalisation spikes, rastered: y int64 [B, C, T] -> counts "
          "int64 [B, F, C].");
}
