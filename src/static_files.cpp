#include "static_files.hpp"

#include <fstream>
#include <iterator>
#include <system_error>

namespace sluice::detail {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decodes a path; nothing for a malformed escape or an encoded NUL.
std::optional<std::string> decode_path(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '%') {
            out += raw[i];
            continue;
        }
        if (i + 2 >= raw.size()) return std::nullopt;
        int high = hex_value(raw[i + 1]);
        int low = hex_value(raw[i + 2]);
        if (high < 0 || low < 0 || (high == 0 && low == 0)) return std::nullopt;
        out += static_cast<char>(high * 16 + low);
        i += 2;
    }
    return out;
}

bool inside(const std::filesystem::path& root, const std::filesystem::path& candidate) {
    auto r = root.begin();
    auto c = candidate.begin();
    for (; r != root.end(); ++r, ++c) {
        if (c == candidate.end() || *r != *c) return false;
    }
    return true;
}

}  // namespace

static_files::static_files(std::string root) {
    if (root.empty()) return;
    std::error_code ec;
    root_ = std::filesystem::weakly_canonical(std::filesystem::path(root), ec);
    if (ec) root_ = std::filesystem::path(root);
}

std::optional<static_file> static_files::find(std::string_view raw_path,
                                              std::size_t max_bytes) const {
    if (!enabled() || raw_path.empty() || raw_path.front() != '/') return std::nullopt;
    auto decoded = decode_path(raw_path);
    if (!decoded) return std::nullopt;
    std::error_code ec;
    auto candidate =
        std::filesystem::weakly_canonical(root_ / std::filesystem::path(decoded->substr(1)), ec);
    if (ec || !inside(root_, candidate)) return std::nullopt;
    if (std::filesystem::is_directory(candidate, ec)) candidate /= "index.html";
    candidate = std::filesystem::canonical(candidate, ec);  // resolves symbolic links
    if (ec || !inside(root_, candidate) || !std::filesystem::is_regular_file(candidate, ec))
        return std::nullopt;
    auto size = std::filesystem::file_size(candidate, ec);
    if (ec || size > max_bytes) return std::nullopt;
    std::ifstream in(candidate, std::ios::binary);
    if (!in) return std::nullopt;
    static_file file;
    file.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    file.content_type = std::string(content_type_for(candidate.filename().string()));
    return file;
}

std::string_view static_files::content_type_for(std::string_view filename) noexcept {
    struct mapping {
        std::string_view extension;
        std::string_view type;
    };
    static constexpr mapping types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".ico", "image/x-icon"},
        {".webp", "image/webp"},
        {".txt", "text/plain; charset=utf-8"},
        {".md", "text/markdown; charset=utf-8"},
        {".wasm", "application/wasm"},
        {".woff2", "font/woff2"},
        {".map", "application/json"},
    };
    auto dot = filename.rfind('.');
    if (dot != std::string_view::npos) {
        auto extension = filename.substr(dot);
        for (const auto& m : types) {
            if (m.extension.size() != extension.size()) continue;
            bool same = true;
            for (std::size_t i = 0; i < extension.size() && same; ++i) {
                char c = extension[i];
                if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
                same = c == m.extension[i];
            }
            if (same) return m.type;
        }
    }
    return "application/octet-stream";
}

}  // namespace sluice::detail
