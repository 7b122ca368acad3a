#include "static_files.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace fs = std::filesystem;
using sluice::detail::static_files;

namespace {

struct temp_site {
    fs::path root = fs::temp_directory_path() / ("sluice-static-" + std::to_string(::getpid()));
    fs::path outside = root.parent_path() / (root.filename().string() + "-secret.txt");
    temp_site() {
        fs::create_directories(root / "css");
        std::ofstream(root / "index.html") << "<h1>hi</h1>";
        std::ofstream(root / "css" / "site.css") << "body{}";
        std::ofstream(outside) << "secret";
        fs::create_symlink(outside, root / "link.txt");
    }
    ~temp_site() {
        fs::remove_all(root);
        fs::remove(outside);
    }
};

}  // namespace

TEST_CASE("static files: index, content types, directories", "[static_files]") {
    temp_site site;
    static_files files(site.root.string());
    auto index = files.find("/");
    REQUIRE(index);
    CHECK(index->body == "<h1>hi</h1>");
    CHECK(index->content_type == "text/html; charset=utf-8");
    auto css = files.find("/css/site.css");
    REQUIRE(css);
    CHECK(css->content_type == "text/css; charset=utf-8");
    CHECK(files.find("/css/%73ite.css"));  // percent-decoded
    CHECK_FALSE(files.find("/missing.js"));
    CHECK_FALSE(files.find("/css"));  // a directory without index.html
}

TEST_CASE("static files never leave the root", "[static_files]") {
    temp_site site;
    static_files files(site.root.string());
    std::string escape = "/../" + site.outside.filename().string();
    CHECK_FALSE(files.find(escape));
    CHECK_FALSE(files.find("/%2e%2e/" + site.outside.filename().string()));
    CHECK_FALSE(files.find("/css/../../" + site.outside.filename().string()));
    CHECK_FALSE(files.find("/link.txt"));  // a symbolic link pointing outside
    CHECK_FALSE(files.find("/index.html%00.txt"));
    CHECK_FALSE(files.find("relative"));
    CHECK_FALSE(static_files("").find("/"));
}

TEST_CASE("content types by extension", "[static_files]") {
    CHECK(static_files::content_type_for("app.JS") == "text/javascript; charset=utf-8");
    CHECK(static_files::content_type_for("x.svg") == "image/svg+xml");
    CHECK(static_files::content_type_for("noext") == "application/octet-stream");
}
