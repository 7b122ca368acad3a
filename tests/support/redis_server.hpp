// A throwaway Redis for tests and benchmarks: its own `redis-server` process.
//
// Defines, in `sluice::test`:
// - `redis_server_options`: which executable, how long to wait, extra flags;
// - `redis_reply` and `redis_command()`: a tiny blocking RESP2 client (one
//   connection per command, every read and write bounded) to check or poke a
//   server from a test;
// - `redis_server`: starts `redis-server` on a free 127.0.0.1 port with
//   persistence off (`--save "" --appendonly no`, a fresh temporary `--dir`),
//   waits (bounded) until it answers PING, and can `stop()` it (SIGTERM, then
//   SIGKILL), `kill()` it (SIGKILL: a crash), `restart()` it on the same port
//   with empty data, `freeze()`/`thaw()` it (SIGSTOP/SIGCONT: a server whose
//   TCP connections stay open but that answers nothing).
//
// Guarantees: the process never outlives the test. The destructor stops it,
// and the child is started with PR_SET_PDEATHSIG=SIGKILL, so it is killed even
// when the test process dies without running destructors. (Linux ties that
// signal to the thread that forked: create the fixture on a thread that lives
// as long as the server should, e.g. the test's main thread.) A missing
// executable, a server that does not answer PING within the startup timeout,
// or one that exits at once throws `std::runtime_error` with a readable
// message (including the end of the server's log).
//
// Thread-safety: call the members of one `redis_server` from one thread;
// `port()` and `address()` may be read from any thread (they never change).
// `redis_command()` is safe from any thread.
//
// Example:
//     sluice::test::redis_server redis;                  // started, answers PING
//     hub_opts.redis_address = redis.address();          // "127.0.0.1:PORT"
//     redis.kill();                                      // Redis crashed
//     redis.restart();                                   // back, empty, same port
#pragma once

#if !defined(__linux__)
#error "tests/support/redis_server.hpp needs Linux (fork, prctl(PR_SET_PDEATHSIG))"
#endif

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace sluice::test {

/// How `redis_server` starts its process. Defaults suit every test.
struct redis_server_options {
    /// The executable; empty means `$SLUICE_REDIS_SERVER` if set, else
    /// `/usr/bin/redis-server` (Debian's `redis-server` package).
    std::string executable;
    /// Bound on waiting for the first PONG after a start or restart.
    std::chrono::milliseconds startup_timeout{5000};
    /// Bound on waiting for the process to exit after SIGTERM in `stop()`,
    /// after which it gets SIGKILL.
    std::chrono::milliseconds stop_timeout{5000};
    /// Appended to the command line (`{"--maxmemory", "10mb"}`); later flags
    /// win over the fixture's own.
    std::vector<std::string> extra_args;
};

/// One RESP2 reply. `error` replies carry their message in `str`
/// (`"ERR unknown command ..."`); `nil` is a null bulk string or array.
struct redis_reply {
    enum class kind { status, error, integer, string, nil, array };
    kind type = kind::nil;
    std::string str;
    long long integer = 0;
    std::vector<redis_reply> elements;

    bool is_error() const noexcept { return type == kind::error; }
};

namespace detail {

using fixture_clock = std::chrono::steady_clock;

/// An owned file descriptor.
class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

inline std::runtime_error redis_error(const std::string& what) {
    return std::runtime_error("redis_server: " + what);
}

inline int remaining_ms(fixture_clock::time_point deadline) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - fixture_clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

/// A non-blocking TCP connection to 127.0.0.1:port, connected before
/// `deadline`; an empty fd when it could not.
inline unique_fd connect_loopback(std::uint16_t port, fixture_clock::time_point deadline) {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return {};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return fd;
    if (errno != EINPROGRESS) return {};
    pollfd p{fd.get(), POLLOUT, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) != 1) return {};
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return {};
    return fd;
}

/// A bounded RESP2 conversation on one connection.
class resp_connection {
public:
    resp_connection(unique_fd fd, fixture_clock::time_point deadline)
        : fd_(std::move(fd)), deadline_(deadline) {}

    bool send_command(const std::vector<std::string>& args) {
        std::string out = "*" + std::to_string(args.size()) + "\r\n";
        for (const auto& a : args) {
            out += "$" + std::to_string(a.size()) + "\r\n";
            out += a;
            out += "\r\n";
        }
        std::size_t sent = 0;
        while (sent < out.size()) {
            ssize_t n = ::send(fd_.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                pollfd p{fd_.get(), POLLOUT, 0};
                if (::poll(&p, 1, remaining_ms(deadline_)) != 1) return false;
                continue;
            }
            return false;
        }
        return true;
    }

    /// Reads one complete reply; throws on a timeout, EOF or a protocol error.
    redis_reply read_reply() {
        std::string line = read_line();
        if (line.empty()) throw redis_error("empty RESP line");
        redis_reply r;
        std::string_view rest(line.data() + 1, line.size() - 1);
        switch (line[0]) {
        case '+':
            r.type = redis_reply::kind::status;
            r.str = std::string(rest);
            return r;
        case '-':
            r.type = redis_reply::kind::error;
            r.str = std::string(rest);
            return r;
        case ':':
            r.type = redis_reply::kind::integer;
            r.integer = std::stoll(std::string(rest));
            return r;
        case '$': {
            long long n = std::stoll(std::string(rest));
            if (n < 0) return r;  // nil
            r.type = redis_reply::kind::string;
            r.str = read_exact(static_cast<std::size_t>(n) + 2);
            r.str.resize(static_cast<std::size_t>(n));
            return r;
        }
        case '*': {
            long long n = std::stoll(std::string(rest));
            if (n < 0) return r;  // nil
            r.type = redis_reply::kind::array;
            for (long long i = 0; i < n; ++i) r.elements.push_back(read_reply());
            return r;
        }
        default: throw redis_error("not a RESP2 reply: " + line);
        }
    }

private:
    bool fill() {
        for (;;) {
            char chunk[4096];
            ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
            if (n > 0) {
                buffer_.append(chunk, static_cast<std::size_t>(n));
                return true;
            }
            if (n == 0) return false;
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
            pollfd p{fd_.get(), POLLIN, 0};
            if (::poll(&p, 1, remaining_ms(deadline_)) != 1) return false;
        }
    }

    std::string read_line() {
        for (;;) {
            auto pos = buffer_.find("\r\n");
            if (pos != std::string::npos) {
                std::string line = buffer_.substr(0, pos);
                buffer_.erase(0, pos + 2);
                return line;
            }
            if (!fill()) throw redis_error("no reply from Redis (timeout or connection closed)");
        }
    }

    std::string read_exact(std::size_t n) {
        while (buffer_.size() < n) {
            if (!fill()) throw redis_error("no reply from Redis (timeout or connection closed)");
        }
        std::string out = buffer_.substr(0, n);
        buffer_.erase(0, n);
        return out;
    }

    unique_fd fd_;
    fixture_clock::time_point deadline_;
    std::string buffer_;
};

/// A port that was free a moment ago (bound to 127.0.0.1:0, then released).
inline std::uint16_t pick_free_port() {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw redis_error(std::string("socket(): ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        throw redis_error(std::string("bind(127.0.0.1:0): ") + std::strerror(errno));
    }
    socklen_t len = sizeof addr;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw redis_error(std::string("getsockname(): ") + std::strerror(errno));
    }
    return ntohs(addr.sin_port);
}

}  // namespace detail

/// Sends one command (`{"SET", "k", "v"}`) to the Redis on 127.0.0.1:`port`
/// on a fresh connection and returns its reply. Throws `std::runtime_error`
/// when it cannot connect or no complete reply arrives within `timeout`; a
/// Redis error is a reply of kind `error`, not an exception.
inline redis_reply redis_command(std::uint16_t port, const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = detail::fixture_clock::now() + timeout;
    auto fd = detail::connect_loopback(port, deadline);
    if (!fd) {
        throw detail::redis_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    }
    detail::resp_connection conn(std::move(fd), deadline);
    if (!conn.send_command(args)) {
        throw detail::redis_error("cannot send to 127.0.0.1:" + std::to_string(port));
    }
    return conn.read_reply();
}

/// True when the Redis on 127.0.0.1:`port` answers PING with PONG within
/// `timeout`; never throws.
inline bool redis_ping(std::uint16_t port,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(500)) {
    try {
        auto r = redis_command(port, {"PING"}, timeout);
        return r.type == redis_reply::kind::status && r.str == "PONG";
    } catch (const std::exception&) {
        return false;
    }
}

/// A `redis-server` process owned by the test: started by the constructor on
/// a free loopback port, gone after the destructor. See the banner.
class redis_server {
public:
    /// Starts the server and waits until it answers PING. Throws
    /// `std::runtime_error` when `redis-server` is missing or does not come up.
    explicit redis_server(redis_server_options options = {}) : options_(std::move(options)) {
        if (options_.executable.empty()) {
            const char* env = std::getenv("SLUICE_REDIS_SERVER");
            options_.executable = (env && *env) ? env : "/usr/bin/redis-server";
        }
        if (::access(options_.executable.c_str(), X_OK) != 0) {
            throw detail::redis_error(
                "cannot run " + options_.executable + " (" + std::strerror(errno) +
                "); install the Debian package redis-server (scripts/install-deps.sh does) "
                "or set SLUICE_REDIS_SERVER");
        }
        make_dir();
        // A port picked free may be taken before redis-server binds it: retry
        // a few times with another one.
        std::string last_error;
        for (int attempt = 0; attempt < 5; ++attempt) {
            port_ = detail::pick_free_port();
            try {
                launch();
                return;
            } catch (const std::runtime_error& e) {
                last_error = e.what();
                if (last_error.find("Address already in use") == std::string::npos) break;
            }
        }
        remove_dir();
        throw std::runtime_error(last_error);
    }

    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    /// Stops the server (as `stop()`) and removes its directory.
    ~redis_server() {
        stop();
        remove_dir();
    }

    /// The loopback port; the same for the fixture's whole life.
    std::uint16_t port() const noexcept { return port_; }

    /// `"127.0.0.1:PORT"`, the form of `sluice-hub --redis`.
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    /// The process id while it runs, -1 otherwise.
    pid_t pid() const noexcept { return pid_; }

    /// The server's working directory (`--dir`, holding only its log); removed
    /// by the destructor.
    const std::string& directory() const noexcept { return dir_; }

    /// True while the process started by this fixture has not been reaped.
    bool running() const noexcept { return pid_ > 0; }

    /// The server's log (stdout and stderr of the process), for diagnostics.
    std::string log() const {
        std::ifstream in(log_path());
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    /// Graceful stop: SIGTERM, then SIGKILL if it has not exited within
    /// `stop_timeout`; returns once the process is reaped. No-op when stopped.
    void stop() {
        if (pid_ <= 0) return;
        if (frozen_) thaw();
        ::kill(pid_, SIGTERM);
        if (!wait_exit(detail::fixture_clock::now() + options_.stop_timeout)) {
            ::kill(pid_, SIGKILL);
            reap_blocking();
        }
    }

    /// A crash: SIGKILL, then reaps the process. Clients see their
    /// connections reset. No-op when stopped.
    void kill() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        reap_blocking();
    }

    /// Starts the server again on the same port with empty data (after
    /// stopping it if it runs), and waits until it answers PING.
    void restart() {
        stop();
        launch();
    }

    /// SIGSTOP: the process keeps its sockets open but answers nothing (a
    /// hung Redis, or pub/sub that silently stopped delivering).
    void freeze() {
        if (pid_ <= 0 || frozen_) return;
        ::kill(pid_, SIGSTOP);
        frozen_ = true;
    }

    /// SIGCONT after `freeze()`: the server answers what queued meanwhile.
    void thaw() {
        if (pid_ <= 0 || !frozen_) return;
        ::kill(pid_, SIGCONT);
        frozen_ = false;
    }

    /// `redis_command()` against this server.
    redis_reply command(const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
        return redis_command(port_, args, timeout);
    }

private:
    std::string log_path() const { return dir_ + "/redis.log"; }

    void make_dir() {
        std::error_code ec;
        auto base = std::filesystem::temp_directory_path(ec);
        if (ec) base = "/tmp";
        std::string templ = (base / "sluice-redis-XXXXXX").string();
        std::vector<char> buf(templ.begin(), templ.end());
        buf.push_back('\0');
        if (::mkdtemp(buf.data()) == nullptr) {
            throw detail::redis_error("mkdtemp(" + templ + "): " + std::strerror(errno));
        }
        dir_ = buf.data();
    }

    void remove_dir() noexcept {
        if (dir_.empty()) return;
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        dir_.clear();
    }

    std::string log_tail() const {
        auto text = log();
        if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
        return text.empty() ? "(empty log)" : text;
    }

    /// Forks and execs redis-server on `port_`, then waits for PONG. Throws
    /// (with the log's tail) when it exits or stays silent.
    void launch() {
        // Everything the child needs is built before fork(): after it only
        // async-signal-safe calls are allowed (the test may have threads).
        std::vector<std::string> args = {options_.executable,
                                         "--port",
                                         std::to_string(port_),
                                         "--bind",
                                         "127.0.0.1",
                                         "--save",
                                         "",
                                         "--appendonly",
                                         "no",
                                         "--daemonize",
                                         "no",
                                         "--dir",
                                         dir_,
                                         "--logfile",
                                         "",
                                         "--loglevel",
                                         "warning",
                                         "--enable-debug-command",
                                         "local"};
        args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);

        detail::unique_fd log_fd(
            ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!log_fd) throw detail::redis_error("cannot create " + log_path());
        detail::unique_fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        const pid_t parent = ::getpid();
        const long max_fd = std::min<long>(::sysconf(_SC_OPEN_MAX), 65536);

        pid_t child = ::fork();
        if (child < 0) throw detail::redis_error(std::string("fork(): ") + std::strerror(errno));
        if (child == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(126);  // the parent died already
            ::dup2(null_fd.get(), 0);
            ::dup2(log_fd.get(), 1);
            ::dup2(log_fd.get(), 2);
            // Sockets of the test (a hub's listening port...) must not stay
            // open in Redis: close every other descriptor.
#ifdef SYS_close_range
            if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
            {
                for (long fd = 3; fd < max_fd; ++fd) ::close(static_cast<int>(fd));
            }
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        pid_ = child;
        frozen_ = false;

        auto deadline = detail::fixture_clock::now() + options_.startup_timeout;
        for (;;) {
            int status = 0;
            pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                pid_ = -1;
                std::string how = WIFEXITED(status)
                                      ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                      : "was killed by signal " + std::to_string(WTERMSIG(status));
                throw detail::redis_error(options_.executable + " " + how + " on port " +
                                          std::to_string(port_) + ": " + log_tail());
            }
            if (redis_ping(port_, std::chrono::milliseconds(200))) return;
            if (detail::fixture_clock::now() >= deadline) {
                kill();
                throw detail::redis_error(options_.executable + " did not answer PING on port " +
                                          std::to_string(port_) + " within " +
                                          std::to_string(options_.startup_timeout.count()) +
                                          " ms: " + log_tail());
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    /// Polls waitpid until the child is reaped or `deadline`; true if reaped.
    bool wait_exit(detail::fixture_clock::time_point deadline) {
        for (;;) {
            int status = 0;
            pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_ || (r < 0 && errno == ECHILD)) {
                pid_ = -1;
                return true;
            }
            if (detail::fixture_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

    /// After SIGKILL: the kernel ends the process promptly, so this wait is
    /// bounded in practice.
    void reap_blocking() noexcept {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        frozen_ = false;
    }

    redis_server_options options_;
    std::string dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
    bool frozen_ = false;
};

}  // namespace sluice::test
