// Choice of the instruction set the biquad kernels run on (biquad_dispatch.h).
#include "biquad_dispatch.h"

#include <cstdlib>
#include <cstring>

namespace learnafe {
namespace biquad {
namespace detail {
namespace {

Isa detect_isa() {
    const char* env = std::getenv("LEARNAFE_ISA");
#if LAFE_X86
    __builtin_cpu_init();
    const bool has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
    const bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    Isa best = has512 ? Isa::Avx512 : has2 ? Isa::Avx2 : Isa::Generic;
    if (env && std::strcmp(env, "generic") == 0) return Isa::Generic;
    if (env && std::strcmp(env, "avx2") == 0 && has2) return Isa::Avx2;
    return best;
#else
    (void)env;
    return Isa::Generic;
#endif
}

}  // namespace

Isa isa() {
    static const Isa value = detect_isa();
    return value;
}

}  // namespace detail

const char* isa_name() {
    switch (detail::isa()) {
        case detail::Isa::Avx512: return "avx512";
        case detail::Isa::Avx2: return "avx2";
        default: return "generic";
    }
}

}  // namespace biquad
}  // namespace learnafe
