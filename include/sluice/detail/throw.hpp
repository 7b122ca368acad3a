// Reporting programmer misuse at construction (bad options). Throws
// std::invalid_argument when exceptions are enabled; otherwise prints the
// message and aborts, so the pure core still builds with -fno-exceptions.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace sluice::detail {

[[noreturn]] inline void throw_invalid_argument(const char* what) {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
    throw std::invalid_argument(what);
#else
    std::fprintf(stderr, "sluice: invalid argument: %s\n", what);
    std::abort();
#endif
}

}  // namespace sluice::detail
