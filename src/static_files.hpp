// Serving files from one directory (`--static DIR`, PROTOCOL.md section 1).
//
// Guarantees: never serves a path outside the directory (after decoding,
// `..` segments and symbolic links are resolved and the result must stay
// inside); `/` and directories serve their `index.html`; the Content-Type
// comes from the extension.
//
// Thread-safety: immutable after construction; lookups from any thread.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::detail {

struct static_file {
    std::string content_type;
    std::string body;
};

class static_files {
public:
    /// An empty root serves nothing.
    explicit static_files(std::string root);

    bool enabled() const noexcept { return !root_.empty(); }

    /// The file for a raw (percent-encoded) request path, or nothing when it
    /// does not exist, is outside the root, or is larger than `max_bytes`.
    std::optional<static_file> find(std::string_view raw_path,
                                    std::size_t max_bytes = 64 << 20) const;

    /// The Content-Type for a file name, by extension.
    static std::string_view content_type_for(std::string_view filename) noexcept;

private:
    std::filesystem::path root_;
};

}  // namespace sluice::detail
