// The Redis fixture of tests/support/redis_server.hpp: it starts a real
// redis-server on a free loopback port with persistence off, kill() and
// restart() behave like a crash and a restart without persistence on the same
// port, freeze() makes a silent server, and no process outlives the fixture
// (not even when the test process dies without running destructors).
#include "redis_server.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

using sluice::test::redis_command;
using sluice::test::redis_ping;
using sluice::test::redis_reply;
using sluice::test::redis_server;
using sluice::test::redis_server_options;

namespace {

using namespace std::chrono_literals;

/// True when `pid` no longer runs: no /proc entry, or a zombie left for
/// another parent to reap.
bool process_gone(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return true;
    std::string line;
    std::getline(stat, line);
    auto paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return condition();
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

/// The message of the exception a fixture with `options` throws ("" if it
/// started).
std::string start_error(const redis_server_options& options) {
    try {
        redis_server redis(options);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

std::string get(const redis_server& redis, const std::string& key) {
    auto r = redis.command({"GET", key});
    return r.type == redis_reply::kind::string ? r.str : "(nil)";
}

}  // namespace

TEST_CASE("redis fixture: starts a server that answers on its loopback port", "[redis_fixture]") {
    redis_server redis;
    CHECK(redis.running());
    CHECK(redis.pid() > 0);
    CHECK(redis.port() != 0);
    CHECK(redis.address() == "127.0.0.1:" + std::to_string(redis.port()));
    CHECK(redis_ping(redis.port()));

    auto pong = redis.command({"PING"});
    CHECK(pong.type == redis_reply::kind::status);
    CHECK(pong.str == "PONG");

    CHECK(redis.command({"SET", "k", "v w"}).str == "OK");
    CHECK(get(redis, "k") == "v w");
    auto n = redis.command({"INCR", "counter"});
    CHECK(n.type == redis_reply::kind::integer);
    CHECK(n.integer == 1);
    auto err = redis.command({"NOSUCHCOMMAND"});
    CHECK(err.is_error());
    CHECK(err.str.find("unknown command") != std::string::npos);

    // Persistence is off: nothing is ever written to disk.
    auto save = redis.command({"CONFIG", "GET", "save"});
    REQUIRE(save.type == redis_reply::kind::array);
    REQUIRE(save.elements.size() == 2);
    CHECK(save.elements[1].str.empty());
    auto aof = redis.command({"CONFIG", "GET", "appendonly"});
    REQUIRE(aof.elements.size() == 2);
    CHECK(aof.elements[1].str == "no");
    auto bind = redis.command({"CONFIG", "GET", "bind"});
    REQUIRE(bind.elements.size() == 2);
    CHECK(bind.elements[1].str == "127.0.0.1");
}

TEST_CASE("redis fixture: two fixtures get two servers", "[redis_fixture]") {
    redis_server a;
    redis_server b;
    CHECK(a.port() != b.port());
    CHECK(a.pid() != b.pid());
    REQUIRE(a.command({"SET", "where", "a"}).str == "OK");
    CHECK(get(b, "where") == "(nil)");
}

TEST_CASE("redis fixture: kill() is a crash, restart() comes back empty on the same port",
          "[redis_fixture]") {
    redis_server redis;
    const auto port = redis.port();
    const auto first_pid = redis.pid();
    REQUIRE(redis.command({"SET", "k", "before"}).str == "OK");

    redis.kill();
    CHECK_FALSE(redis.running());
    CHECK(redis.pid() == -1);
    CHECK(process_gone(first_pid));
    CHECK_FALSE(redis_ping(port));
    CHECK_THROWS_AS(redis_command(port, {"PING"}, 300ms), std::runtime_error);
    redis.kill();  // no-op when not running
    redis.stop();

    redis.restart();
    CHECK(redis.running());
    CHECK(redis.port() == port);
    CHECK(redis.pid() != first_pid);
    CHECK(redis_ping(port));
    CHECK(get(redis, "k") == "(nil)");  // persistence off: the data is gone
}

TEST_CASE("redis fixture: restart() of a running server stops it first", "[redis_fixture]") {
    redis_server redis;
    const auto port = redis.port();
    const auto first_pid = redis.pid();
    REQUIRE(redis.command({"SET", "k", "v"}).str == "OK");
    redis.restart();
    CHECK(process_gone(first_pid));
    CHECK(redis.port() == port);
    CHECK(redis.running());
    CHECK(get(redis, "k") == "(nil)");
    // A second restart in a row works as well.
    redis.restart();
    CHECK(redis_ping(port));
}

TEST_CASE("redis fixture: stop() is graceful and final until restart()", "[redis_fixture]") {
    redis_server redis;
    const auto pid = redis.pid();
    redis.stop();
    CHECK_FALSE(redis.running());
    CHECK(process_gone(pid));
    CHECK_FALSE(redis_ping(redis.port()));
    redis.restart();
    CHECK(redis_ping(redis.port()));
}

TEST_CASE("redis fixture: freeze() keeps the port open but answers nothing", "[redis_fixture]") {
    redis_server redis;
    redis.freeze();
    // The kernel still accepts the TCP connection; Redis does not reply.
    CHECK_FALSE(redis_ping(redis.port(), 300ms));
    CHECK_THROWS_AS(redis.command({"PING"}, 300ms), std::runtime_error);
    redis.thaw();
    CHECK(eventually([&] { return redis_ping(redis.port()); }));

    // A frozen server is still stopped by the destructor (stop() thaws it).
    redis.freeze();
}

TEST_CASE("redis fixture: the destructor leaves no process and no directory", "[redis_fixture]") {
    pid_t pid = -1;
    std::uint16_t port = 0;
    std::string dir;
    {
        redis_server redis;
        pid = redis.pid();
        port = redis.port();
        dir = redis.directory();
        REQUIRE(redis_ping(port));
        REQUIRE(std::filesystem::is_directory(dir));
        CHECK(std::filesystem::exists(dir + "/redis.log"));
    }
    CHECK(process_gone(pid));
    CHECK_FALSE(redis_ping(port));
    CHECK_FALSE(std::filesystem::exists(dir));
}

TEST_CASE("redis fixture: a missing executable is a clear error", "[redis_fixture]") {
    redis_server_options options;
    options.executable = "/nonexistent/redis-server";
    auto what = start_error(options);
    CHECK(what.find("cannot run /nonexistent/redis-server") != std::string::npos);
    CHECK(what.find("install the Debian package redis-server") != std::string::npos);
}

TEST_CASE("redis fixture: a server that cannot start reports its log", "[redis_fixture]") {
    redis_server_options options;
    options.extra_args = {"--no-such-directive", "1"};
    auto what = start_error(options);
    CHECK(what.find("exited") != std::string::npos);
    CHECK(what.find("no-such-directive") != std::string::npos);
}

TEST_CASE("redis fixture: the server dies with the process that started it", "[redis_fixture]") {
    // A child process starts a fixture, reports its pid, and exits without
    // running destructors (as a crashing test would). This process becomes the
    // subreaper of the orphaned server, so it can see how that one ended.
    REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(fds[0]);
        std::string report = "-1 -";
        try {
            auto* redis = new redis_server();  // never deleted
            report = std::to_string(redis->pid()) + " " + redis->directory();
        } catch (...) {
        }
        auto n = ::write(fds[1], report.data(), report.size());
        ::_exit(n == static_cast<ssize_t>(report.size()) ? 0 : 1);
    }
    ::close(fds[1]);
    std::string report;
    for (;;) {
        pollfd p{fds[0], POLLIN, 0};
        REQUIRE(::poll(&p, 1, 10000) == 1);
        char buf[512];
        auto n = ::read(fds[0], buf, sizeof buf);
        REQUIRE(n >= 0);
        if (n == 0) break;
        report.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    std::istringstream in(report);
    long long redis_pid = -1;
    std::string dir;
    in >> redis_pid >> dir;
    REQUIRE(redis_pid > 0);
    int redis_status = 0;
    CHECK(eventually([&] {
        return ::waitpid(static_cast<pid_t>(redis_pid), &redis_status, WNOHANG) == redis_pid;
    }));
    CHECK(WIFSIGNALED(redis_status));
    CHECK(WTERMSIG(redis_status) == SIGKILL);
    CHECK(process_gone(static_cast<pid_t>(redis_pid)));
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);  // the child could not clean up
}
