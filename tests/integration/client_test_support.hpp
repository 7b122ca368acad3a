// Fixtures of the client integration tests (client_ws_test, client_sse_test,
// client_mt_test): a hub whose server can be stopped and started again on the
// same port, a client-side io_context on its own thread, and a recorder of
// what a client delivered. Every wait is bounded.
#pragma once

#include <sluice/auth.hpp>
#include <sluice/client_options.hpp>
#include <sluice/hub.hpp>
#include <sluice/server.hpp>

#include "test_client.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sluice::test {

/// A hub and a server on 127.0.0.1 whose server can be stopped (closing
/// WebSockets with 1001) and started again on the same port, and whose hub can
/// be replaced (a restart of an in-memory hub: new epochs).
class restartable_server {
public:
    explicit restartable_server(hub_options hub_opts = {},
                                std::shared_ptr<const auth_policy> policy = nullptr,
                                server_options options = quick_options())
        : work_(asio::make_work_guard(io_)), hub_opts_(hub_opts), options_(std::move(options)) {
        policy_ = policy ? std::move(policy) : std::make_shared<anonymous_policy>(true);
        hub_.emplace(io_.get_executor(), policy_, hub_opts_);
        thread_ = std::thread([this] { io_.run(); });
        start();
    }
    ~restartable_server() {
        stop();
        work_.reset();
        io_.stop();
        thread_.join();
        hub_.reset();
    }

    std::uint16_t port() const noexcept { return port_; }
    sluice::hub& hub() { return *hub_; }

    /// Listens (on the previous port after the first start).
    void start() {
        server_.emplace(io_, *hub_, options_);
        if (auto ec = server_->listen("127.0.0.1", port_)) {
            throw std::runtime_error("restartable_server: listen failed: " + ec.message());
        }
        port_ = server_->local_endpoint().port();
    }

    /// Stops the server gracefully (bounded) and destroys it.
    void stop() {
        if (!server_) return;
        auto done = std::make_shared<std::promise<void>>();
        auto f = done->get_future();
        server_->stop([done] { done->set_value(); });
        f.wait_for(default_timeout);
        server_.reset();
    }

    /// A new hub (new epochs for every topic); the server must be stopped.
    void replace_hub() {
        hub_.reset();
        hub_.emplace(io_.get_executor(), policy_, hub_opts_);
    }

    /// A host publish, waited for (bounded): the offset.
    std::uint64_t publish(const std::string& topic, const std::string& data) {
        auto p = std::make_shared<std::promise<std::pair<std::error_code, stream_position>>>();
        auto f = p->get_future();
        hub_->async_publish(topic, data, {}, [p](std::error_code ec, stream_position pos) {
            p->set_value({ec, std::move(pos)});
        });
        if (f.wait_for(default_timeout) != std::future_status::ready)
            throw std::runtime_error("publish did not complete");
        auto r = f.get();
        if (r.first) throw std::runtime_error("publish failed: " + r.first.message());
        return r.second.offset;
    }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    hub_options hub_opts_;
    server_options options_;
    std::shared_ptr<const auth_policy> policy_;
    std::optional<sluice::hub> hub_;
    std::optional<sluice::server> server_;
    std::thread thread_;
    std::uint16_t port_ = 0;
};

/// The clients' io_context, run by `threads` threads until destroyed.
class client_loop {
public:
    explicit client_loop(std::size_t threads = 1) : work_(asio::make_work_guard(io_)) {
        for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
    }
    ~client_loop() {
        work_.reset();
        io_.stop();
        for (auto& t : threads_) t.join();
    }
    asio::any_io_executor executor() { return io_.get_executor(); }
    asio::io_context& io() { return io_; }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::vector<std::thread> threads_;
};

/// One event as delivered.
struct seen_event {
    std::string sub, topic, epoch, data, event;
    std::uint64_t offset = 0;
};

/// One subscription status as delivered.
struct seen_status {
    std::string topic, epoch;
    std::error_code error;
    bool resumed = false, recovered = false;
    std::uint64_t offset = 0;
};

/// Records what a client delivered; `wait_for` polls a predicate under the
/// lock until it holds or the timeout passes.
class recorder {
public:
    client_event_handler events() {
        return [this](const client_event& e) {
            std::lock_guard<std::mutex> lock(m_);
            events_.push_back({std::string(e.sub), std::string(e.topic), std::string(e.epoch),
                               std::string(e.data), std::string(e.event), e.offset});
            cv_.notify_all();
        };
    }
    subscription_status_handler statuses() {
        return [this](const subscription_status& s) {
            std::lock_guard<std::mutex> lock(m_);
            statuses_.push_back({std::string(s.topic), std::string(s.epoch), s.error, s.resumed,
                                 s.recovered, s.offset});
            cv_.notify_all();
        };
    }
    client_state_handler states() {
        return [this](const client_state& s) {
            std::lock_guard<std::mutex> lock(m_);
            states_.push_back(s);
            cv_.notify_all();
        };
    }
    client_publish_handler published(std::string tag) {
        return [this, tag](std::error_code ec, const stream_position& p) {
            std::lock_guard<std::mutex> lock(m_);
            outcomes_.push_back({tag, ec, p});
            cv_.notify_all();
        };
    }

    struct outcome {
        std::string tag;
        std::error_code error;
        stream_position position;
    };

    template <class Pred>
    bool wait_for(Pred pred, std::chrono::milliseconds timeout = default_timeout) {
        std::unique_lock<std::mutex> lock(m_);
        return cv_.wait_for(lock, timeout, [&] { return pred(*this); });
    }

    // Accessors: call with the lock held (inside wait_for), or use the copies.
    std::vector<seen_event> events_;
    std::vector<seen_status> statuses_;
    std::vector<client_state> states_;
    std::vector<outcome> outcomes_;

    std::vector<seen_event> events_copy() {
        std::lock_guard<std::mutex> lock(m_);
        return events_;
    }
    std::vector<seen_status> statuses_copy() {
        std::lock_guard<std::mutex> lock(m_);
        return statuses_;
    }
    std::vector<client_state> states_copy() {
        std::lock_guard<std::mutex> lock(m_);
        return states_;
    }
    std::vector<outcome> outcomes_copy() {
        std::lock_guard<std::mutex> lock(m_);
        return outcomes_;
    }
    std::size_t count_state(client_state_kind k) {
        std::lock_guard<std::mutex> lock(m_);
        std::size_t n = 0;
        for (auto& s : states_) n += s.kind == k;
        return n;
    }

    std::size_t count_state_locked(client_state_kind k) const {
        std::size_t n = 0;
        for (auto& s : states_) n += s.kind == k;
        return n;
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
};

/// Offsets of the recorded events of `topic`.
inline std::vector<std::uint64_t> offsets(const std::vector<seen_event>& events,
                                          const std::string& topic) {
    std::vector<std::uint64_t> out;
    for (const auto& e : events) {
        if (e.topic == topic) out.push_back(e.offset);
    }
    return out;
}

/// Options with short timers for tests.
template <class Options>
Options quick_client(Options o) {
    o.reconnect.initial_delay = std::chrono::milliseconds(20);
    o.reconnect.max_delay = std::chrono::milliseconds(200);
    o.connect_timeout = std::chrono::seconds(2);
    return o;
}

}  // namespace sluice::test

// ---------------------------------------------------------------------------
// TLS: a self-signed certificate made at test time, and a TLS-terminating
// forwarder in front of a plain server.

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <asio/write.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace sluice::test {

/// A P-256 key and a self-signed certificate for 127.0.0.1 and localhost
/// (its own CA), as PEM, plus the certificate written to a file in a fresh
/// temporary directory (removed on destruction).
class self_signed_cert {
public:
    self_signed_cert() {
        EVP_PKEY* key = EVP_EC_gen("P-256");
        X509* x = X509_new();
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, key);
        X509_NAME* name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("sluice test"), -1, -1,
                                   0);
        X509_set_issuer_name(x, name);
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
        for (auto [nid, value] :
             {std::pair<int, const char*>{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
              {NID_basic_constraints, "critical,CA:TRUE"}}) {
            X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
            X509_add_ext(x, ext, -1);
            X509_EXTENSION_free(ext);
        }
        X509_sign(x, key, EVP_sha256());
        cert_pem_ = to_pem([&](BIO* b) { PEM_write_bio_X509(b, x); });
        key_pem_ = to_pem([&](BIO* b) {
            PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
        });
        X509_free(x);
        EVP_PKEY_free(key);
        char dir[] = "/tmp/sluice-tls-XXXXXX";
        if (!mkdtemp(dir)) throw std::runtime_error("mkdtemp failed");
        dir_ = dir;
        ca_file_ = dir_ + "/ca.pem";
        std::ofstream(ca_file_) << cert_pem_;
    }
    ~self_signed_cert() {
        std::remove(ca_file_.c_str());
        std::remove(dir_.c_str());
    }
    const std::string& cert_pem() const { return cert_pem_; }
    const std::string& key_pem() const { return key_pem_; }
    const std::string& ca_file() const { return ca_file_; }

private:
    template <class F>
    static std::string to_pem(F write) {
        BIO* b = BIO_new(BIO_s_mem());
        write(b);
        char* data = nullptr;
        const long n = BIO_get_mem_data(b, &data);
        std::string out(data, static_cast<std::size_t>(n));
        BIO_free(b);
        return out;
    }
    std::string cert_pem_, key_pem_, dir_, ca_file_;
};

/// Accepts TLS on 127.0.0.1 (a free port) and forwards the plain bytes to
/// 127.0.0.1:`target`, on its own thread.
class tls_forwarder {
public:
    tls_forwarder(const self_signed_cert& cert, std::uint16_t target)
        : ctx_(asio::ssl::context::tls_server), acceptor_(io_), target_(target) {
        ctx_.use_certificate_chain(asio::buffer(cert.cert_pem()));
        ctx_.use_private_key(asio::buffer(cert.key_pem()), asio::ssl::context::pem);
        asio::ip::tcp::endpoint ep(asio::ip::make_address_v4("127.0.0.1"), 0);
        acceptor_.open(ep.protocol());
        acceptor_.bind(ep);
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~tls_forwarder() {
        asio::post(io_, [this] {
            std::error_code ignored;
            acceptor_.close(ignored);
        });
        io_.stop();
        thread_.join();
    }
    std::uint16_t port() const noexcept { return port_; }
    /// Completed TLS handshakes.
    std::size_t handshakes() const noexcept { return handshakes_.load(); }

private:
    struct link {
        explicit link(asio::io_context& io, asio::ssl::context& ctx) : tls(io, ctx), up(io) {}
        asio::ssl::stream<asio::ip::tcp::socket> tls;
        asio::ip::tcp::socket up;
        std::array<char, 16384> down_buf{}, up_buf{};
        void close() {
            std::error_code ignored;
            tls.next_layer().close(ignored);
            up.close(ignored);
        }
    };

    void accept() {
        auto l = std::make_shared<link>(io_, ctx_);
        acceptor_.async_accept(l->tls.next_layer(), [this, l](std::error_code ec) {
            if (ec) return;
            accept();
            l->tls.async_handshake(asio::ssl::stream_base::server, [this, l](std::error_code ec2) {
                if (ec2) return l->close();
                ++handshakes_;
                asio::ip::tcp::endpoint target(asio::ip::make_address_v4("127.0.0.1"), target_);
                l->up.async_connect(target, [this, l](std::error_code ec3) {
                    if (ec3) return l->close();
                    pump_down(l);
                    pump_up(l);
                });
            });
        });
    }
    // client (TLS) -> server
    void pump_down(std::shared_ptr<link> l) {
        l->tls.async_read_some(asio::buffer(l->down_buf),
                               [this, l](std::error_code ec, std::size_t n) {
                                   if (ec) return l->close();
                                   asio::async_write(l->up, asio::buffer(l->down_buf.data(), n),
                                                     [this, l](std::error_code ec2, std::size_t) {
                                                         if (ec2) return l->close();
                                                         pump_down(l);
                                                     });
                               });
    }
    // server -> client (TLS)
    void pump_up(std::shared_ptr<link> l) {
        l->up.async_read_some(asio::buffer(l->up_buf),
                              [this, l](std::error_code ec, std::size_t n) {
                                  if (ec) return l->close();
                                  asio::async_write(l->tls, asio::buffer(l->up_buf.data(), n),
                                                    [this, l](std::error_code ec2, std::size_t) {
                                                        if (ec2) return l->close();
                                                        pump_up(l);
                                                    });
                              });
    }

    asio::io_context io_;
    asio::ssl::context ctx_;
    asio::ip::tcp::acceptor acceptor_;
    std::uint16_t target_;
    std::uint16_t port_ = 0;
    std::atomic<std::size_t> handshakes_{0};
    std::thread thread_;
};

}  // namespace sluice::test
