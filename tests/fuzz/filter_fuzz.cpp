// Fuzzes the filter compiler (include/sluice/filter.hpp): the first line of the
// input is a filter, the rest an event's data. Compiling must never crash and
// either succeed or report invalid_filter with a message; a compiled filter
// must evaluate any data without crashing, and the same way twice.
#include <sluice/filter.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto newline = input.find('\n');
    std::string_view spec = input.substr(0, newline);
    std::string_view event =
        newline == std::string_view::npos ? std::string_view("{}") : input.substr(newline + 1);
    auto compiled = sluice::parse_filter(spec);
    if (!compiled) {
        if (compiled.error != sluice::errc::invalid_filter || compiled.message.empty())
            std::abort();
        return 0;
    }
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(event.data(), event.size());
    if (doc.HasParseError()) return 0;
    bool first = compiled.compiled.matches(doc);
    if (compiled.compiled.matches(doc) != first) std::abort();
    if (compiled.compiled.empty() && !first) std::abort();
    return 0;
}
