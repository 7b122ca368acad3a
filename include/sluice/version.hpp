// sluice/version.hpp: the library's version, following semantic versioning.
//
// Thread-safety: constants only.
#pragma once

#define SLUICE_VERSION_MAJOR 0
#define SLUICE_VERSION_MINOR 1
#define SLUICE_VERSION_PATCH 0
/// The version as one number, MAJOR * 10000 + MINOR * 100 + PATCH.
#define SLUICE_VERSION \
    (SLUICE_VERSION_MAJOR * 10000 + SLUICE_VERSION_MINOR * 100 + SLUICE_VERSION_PATCH)
/// The version as a string literal, "MAJOR.MINOR.PATCH".
#define SLUICE_VERSION_STRING "0.1.0"

namespace sluice {
/// The wire protocol version this library speaks (PROTOCOL.md).
inline constexpr int protocol_version = 1;
}  // namespace sluice
