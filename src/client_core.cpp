#include "client_core.hpp"

#include "client_json.hpp"

#include <sluice/detail/throw.hpp>

#include <asio/connect.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/ssl/error.hpp>
#include <asio/write.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

namespace sluice::detail {

namespace {

constexpr std::size_t initial_read_buffer = 16 * 1024;
constexpr std::size_t max_error_body = 64 * 1024;

std::minstd_rand seeded_rng(const std::optional<std::uint64_t>& seed) {
    // Mixed first: minstd's first draw is linear in its seed, and hosts often
    // give consecutive seeds (instance ids) to a crowd of clients.
    if (seed) {
        return std::minstd_rand(
            static_cast<std::minstd_rand::result_type>(mix_seed(*seed) % 2147483646u + 1));
    }
    std::random_device device;
    return std::minstd_rand(device() % 2147483646u + 1);
}

bool is_exact_topic(std::string_view topic) {
    std::size_t start = 0;
    for (;;) {
        const auto colon = topic.find(':', start);
        const std::string_view seg = topic.substr(start, colon - start);
        if (seg == "*" || seg == "#") return false;
        if (colon == std::string_view::npos) return true;
        start = colon + 1;
    }
}

}  // namespace

client_core::client_core(asio::any_io_executor executor, std::string_view url,
                         std::string_view default_path, const client_options& options,
                         const backoff_options& reconnect)
    : strand_(asio::make_strand(executor)),
      options_(options),
      token_(options.token),
      policy_(reconnect, options.breaker, options.healthy_after, seeded_rng(options.seed)),
      executor_(std::move(executor)),
      retry_timer_(strand_) {
    std::string error;
    auto parsed = parse_client_url(url, default_path, error);
    if (!parsed) throw_invalid_argument(("client URL: " + error).c_str());
    if (parsed->websocket != (default_path == "/ws")) {
        throw_invalid_argument(default_path == "/ws"
                                   ? "client URL: ws_client needs a ws:// or wss:// URL"
                                   : "client URL: sse_client needs an http:// or https:// URL");
    }
    url_ = std::move(*parsed);
    if (options_.connect_timeout <= std::chrono::milliseconds::zero())
        throw_invalid_argument("client_options: connect_timeout must be > 0");
    if (options_.healthy_after < std::chrono::milliseconds::zero())
        throw_invalid_argument("client_options: healthy_after must be >= 0");
    if (options_.max_message_bytes < 1024)
        throw_invalid_argument("client_options: max_message_bytes must be >= 1024");
    std::random_device device;
    mask_rng_.seed(device() % 2147483646u + 1);
    if (url_.tls) {
        tls_context_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
        tls_context_->set_options(asio::ssl::context::default_workarounds |
                                  asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                                  asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
        std::error_code ec;
        if (!options_.tls.ca_file.empty()) {
            tls_context_->load_verify_file(options_.tls.ca_file, ec);
            if (ec) throw_invalid_argument("tls_options: cannot load ca_file");
        } else {
            tls_context_->set_default_verify_paths(ec);
        }
        tls_context_->set_verify_mode(options_.tls.verify_peer ? asio::ssl::verify_peer
                                                               : asio::ssl::verify_none);
    }
}

client_core::~client_core() = default;

// ---------------------------------------------------------------------------
// Public API

void client_core::connect() {
    asio::post(strand_, [self = shared_from_this()] {
        self->want_connect_ = true;
        if (self->phase_ != phase::idle && self->phase_ != phase::closed) return;
        self->policy_.reset(client_clock::now());
        self->phase_ = phase::idle;
        self->start_attempt();
    });
}

void client_core::close() {
    asio::post(strand_, [self = shared_from_this()] {
        self->want_connect_ = false;
        if (self->phase_ == phase::closed || self->phase_ == phase::closing) return;
        if (self->phase_ == phase::open && self->conn_) {
            const auto wait = self->begin_graceful_close();
            if (wait > std::chrono::nanoseconds::zero()) {
                self->phase_ = phase::closing;
                auto c = self->conn_;
                c->heartbeat_timer.cancel();
                c->connect_timer.expires_after(wait);
                c->connect_timer.async_wait([self, c](std::error_code ec) {
                    if (ec || c != self->conn_) return;
                    self->finish_close();
                });
                return;
            }
        }
        self->finish_close();
    });
}

void client_core::set_token(std::string token) {
    asio::post(strand_, [self = shared_from_this(), t = std::move(token)]() mutable {
        self->token_ = std::move(t);
    });
}

void client_core::on_state(client_state_handler handler) {
    asio::post(strand_, [self = shared_from_this(), h = std::move(handler)]() mutable {
        std::lock_guard<std::mutex> lock(self->user_mutex_);
        self->state_handler_ = std::move(h);
    });
}

void client_core::reset_connection() {
    asio::post(strand_, [self = shared_from_this()] {
        if (self->phase_ == phase::connecting || self->phase_ == phase::open) {
            self->end_connection(lost(client_errc::connection_lost));
        }
    });
}

void client_core::detach() {
    if (strand_.running_in_this_thread()) {
        detached_.store(true);
    } else {
        std::lock_guard<std::mutex> lock(user_mutex_);
        detached_.store(true);
    }
    asio::post(strand_, [self = shared_from_this()] {
        self->want_connect_ = false;
        ++self->generation_;
        self->retry_timer_.cancel();
        if (auto c = std::move(self->conn_)) {
            c->close();
            self->on_connection_ended();
        }
        if (self->phase_ != phase::closed) {
            self->phase_ = phase::closed;
            self->on_closed();
        }
    });
}

subscription client_core::subscribe(std::string topic, subscribe_options options,
                                    client_event_handler on_event) {
    const std::uint64_t id = next_sub_id_.fetch_add(1);
    {
        std::lock_guard<std::mutex> lock(active_mutex_);
        active_ids_.insert(id);
    }
    subscription handle(std::weak_ptr<subscription_owner>(shared_from_this()), id, topic);
    asio::post(strand_, [self = shared_from_this(), id, topic = std::move(topic),
                         options = std::move(options), on_event = std::move(on_event)]() mutable {
        auto sub = std::make_shared<client_sub>();
        sub->id = id;
        sub->topic = std::move(topic);
        sub->exact = is_exact_topic(sub->topic);
        sub->filter_json = options.filter_json;
        sub->on_event = std::move(on_event);
        sub->on_status = std::move(options.on_status);
        if (options.since && sub->exact) {
            sub->position.assign(options.since->offset, options.since->epoch);
        }
        std::error_code refusal;
        if (self->subs_.count(sub->topic) != 0) {
            refusal = make_error_code(errc::already_subscribed);
        } else {
            refusal = self->check_subscribe(*sub, options);
        }
        if (refusal) {
            {
                std::lock_guard<std::mutex> lock(self->active_mutex_);
                self->active_ids_.erase(id);
            }
            subscription_status st;
            st.topic = sub->topic;
            st.error = refusal;
            st.recovered = false;
            self->deliver_status(*sub, st);
            return;
        }
        self->subs_.emplace(sub->topic, sub);
        self->subs_by_id_.emplace(id, sub);
        self->on_subscribe(*sub);
        if (self->want_connect_ && self->phase_ == phase::idle) self->start_attempt();
    });
    return handle;
}

void client_core::unsubscribe(std::uint64_t id) {
    {
        std::lock_guard<std::mutex> lock(active_mutex_);
        active_ids_.erase(id);
    }
    asio::dispatch(strand_, [self = shared_from_this(), id] {
        auto it = self->subs_by_id_.find(id);
        if (it == self->subs_by_id_.end()) return;
        auto keep = it->second;
        self->on_unsubscribe(*keep);
        self->drop_subscription(*keep);
    });
}

bool client_core::subscription_active(std::uint64_t id) const {
    std::lock_guard<std::mutex> lock(active_mutex_);
    return active_ids_.count(id) != 0;
}

void client_core::drop_subscription(client_sub& sub) {
    auto keep = subs_by_id_[sub.id];
    {
        std::lock_guard<std::mutex> lock(active_mutex_);
        active_ids_.erase(sub.id);
    }
    subs_by_id_.erase(sub.id);
    auto it = subs_.find(sub.topic);
    if (it != subs_.end() && it->second.get() == &sub) subs_.erase(it);
}

bool parse_message(std::string_view text, message_fields& f) {
    return json_for_each_member(text, [&](std::string_view k, std::string_view v) {
        if (k == "type") {
            f.type = v;
        } else if (k == "sub") {
            f.sub = v;
        } else if (k == "topic") {
            f.topic = v;
        } else if (k == "offset") {
            f.offset = v;
        } else if (k == "epoch") {
            f.epoch = v;
        } else if (k == "ts") {
            f.ts = v;
        } else if (k == "data") {
            f.data = v;
        } else if (k == "event") {
            f.event = v;
        } else if (k == "id") {
            f.id = v;
        } else if (k == "code") {
            f.code = v;
        } else if (k == "recovered") {
            f.recovered = v;
        }
    });
}

bool client_core::deliver_event(const message_fields& f) {
    std::string_view sub_name;
    if (!json_string(f.sub, sub_scratch_, sub_name)) return false;
    auto it = subs_.find(sub_name);
    if (it == subs_.end()) return true;  // unsubscribed meanwhile
    // Held for the call: the handler may unsubscribe (and so erase) it.
    std::shared_ptr<client_sub> keep = it->second;
    client_event ev;
    ev.sub = keep->topic;
    if (!json_string(f.topic, topic_scratch_, ev.topic) || !json_u64(f.offset, ev.offset) ||
        !json_string(f.epoch, epoch_scratch_, ev.epoch) || f.data.empty())
        return false;
    json_i64(f.ts, ev.ts);
    ev.data = f.data;
    if (!f.event.empty()) json_string(f.event, event_scratch_, ev.event);
    if (keep->exact && !keep->position.accept(ev.offset, ev.epoch)) return true;  // a duplicate
    call_user([&] {
        if (keep->on_event) keep->on_event(ev);
    });
    return true;
}

void client_core::deliver_status(client_sub& sub, const subscription_status& status) {
    call_user([&] {
        if (sub.on_status) sub.on_status(status);
    });
}

// ---------------------------------------------------------------------------
// The reconnection loop

void client_core::emit(const client_state& s) {
    call_user([&] {
        if (state_handler_) state_handler_(s);
    });
}

void client_core::go_closed(std::error_code error, std::uint16_t close_code, int http_status) {
    phase_ = phase::closed;
    want_connect_ = false;
    ++generation_;
    retry_timer_.cancel();
    on_closed();
    client_state s;
    s.kind = client_state_kind::closed;
    s.error = error;
    s.close_code = close_code;
    s.http_status = http_status;
    emit(s);
}

void client_core::schedule(client_state_kind kind, std::chrono::nanoseconds delay,
                           std::uint32_t attempt, const client_ending& why) {
    phase_ = phase::waiting;
    const std::uint64_t gen = ++generation_;
    retry_timer_.expires_after(std::chrono::duration_cast<client_clock::duration>(delay));
    retry_timer_.async_wait([self = shared_from_this(), gen](std::error_code ec) {
        if (ec || gen != self->generation_ || self->phase_ != phase::waiting) return;
        self->start_attempt();
    });
    client_state s;
    s.kind = kind;
    s.delay = delay;
    s.attempt = kind == client_state_kind::reconnecting ? attempt : 0;
    s.error = why.error;
    s.close_code = why.close_code;
    s.http_status = why.http_status;
    emit(s);
}

void client_core::start_attempt() {
    if (phase_ == phase::closed) return;
    if (!wants_connection()) {
        phase_ = phase::idle;
        return;
    }
    const auto now = client_clock::now();
    if (auto wait = policy_.begin_attempt(now)) {
        schedule(client_state_kind::circuit_open, *wait, 0, {});
        return;
    }
    phase_ = phase::connecting;
    ++generation_;
    auto c = std::make_shared<client_connection>(strand_, tls_context_.get());
    conn_ = c;
    c->rbuf.resize(initial_read_buffer);
    client_state s;
    s.kind = client_state_kind::connecting;
    s.attempt = policy_.attempts();
    emit(s);
    if (conn_ != c) return;  // the handler closed the client

    auto self = shared_from_this();
    c->connect_timer.expires_after(options_.connect_timeout);
    c->connect_timer.async_wait([self, c](std::error_code ec) {
        if (ec || c != self->conn_ || c->open) return;
        c->timed_out = true;
        self->end_connection(lost(client_errc::connect_timeout));
    });
    c->resolver.async_resolve(
        url_.host, std::to_string(url_.port),
        [self, c](std::error_code ec, asio::ip::tcp::resolver::results_type results) {
            if (c != self->conn_) return;
            if (ec) return self->attempt_error(c, ec);
            asio::async_connect(c->socket(), results,
                                [self, c](std::error_code ec2, const asio::ip::tcp::endpoint&) {
                                    if (c != self->conn_) return;
                                    if (ec2) return self->attempt_error(c, ec2);
                                    self->on_connected(c);
                                });
        });
}

void client_core::attempt_error(const std::shared_ptr<client_connection>& c, std::error_code ec) {
    if (c != conn_) return;
    client_ending e;
    e.error = c->timed_out ? make_error_code(client_errc::connect_timeout) : ec;
    e.action = disconnect_action::reconnect;
    end_connection(e);
}

void client_core::on_connected(const std::shared_ptr<client_connection>& c) {
    std::error_code ignored;
    c->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    if (!c->tls) return write_request(c);
    SSL* ssl = c->tls->native_handle();
    const std::string& name =
        options_.tls.server_name.empty() ? url_.host : options_.tls.server_name;
    if (!options_.tls.server_name.empty() || !url_.host_is_ip) {
        SSL_set_tlsext_host_name(ssl, name.c_str());
    }
    if (options_.tls.verify_peer) {
        if (options_.tls.server_name.empty() && url_.host_is_ip) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url_.host.c_str());
        } else {
            SSL_set1_host(ssl, name.c_str());
        }
    }
    auto self = shared_from_this();
    c->tls->async_handshake(asio::ssl::stream_base::client, [self, c](std::error_code ec) {
        if (c != self->conn_) return;
        if (ec) {
            client_ending e;
            const long verify = SSL_get_verify_result(c->tls->native_handle());
            if (c->timed_out) {
                e.error = make_error_code(client_errc::connect_timeout);
            } else if (self->options_.tls.verify_peer && verify != X509_V_OK) {
                e.error = make_error_code(client_errc::tls_verification_failed);
                e.action = disconnect_action::fatal;
            } else {
                e.error = make_error_code(client_errc::tls_handshake_failed);
            }
            return self->end_connection(e);
        }
        self->write_request(c);
    });
}

void client_core::write_request(const std::shared_ptr<client_connection>& c) {
    std::string head = request_head();
    head += "\r\n";
    c->out_pending = std::move(head);
    c->request_sent = true;
    flush(c);
    read_some(c);
}

void client_core::flush(const std::shared_ptr<client_connection>& c) {
    if (c->writing || c->out_pending.empty()) return;
    std::swap(c->out_pending, c->out_writing);
    c->out_pending.clear();
    c->writing = true;
    auto self = shared_from_this();
    auto handler = [self, c](std::error_code ec, std::size_t) {
        c->writing = false;
        c->out_writing.clear();
        if (c != self->conn_) return;
        if (ec) {
            return self->end_connection(lost(client_errc::connection_lost));
        }
        self->flush(c);
    };
    if (c->tls) {
        asio::async_write(*c->tls, asio::buffer(c->out_writing), std::move(handler));
    } else {
        asio::async_write(c->tcp, asio::buffer(c->out_writing), std::move(handler));
    }
}

void client_core::send(std::string_view bytes) {
    if (!conn_) return;
    conn_->out_pending.append(bytes.data(), bytes.size());
    flush(conn_);
}

void client_core::read_some(const std::shared_ptr<client_connection>& c) {
    if (c->rsize == c->rbuf.size()) {
        const std::size_t limit = options_.max_message_bytes + 64 * 1024;
        if (c->rbuf.size() >= limit) {
            return end_connection(lost(client_errc::message_too_big));
        }
        c->rbuf.resize(std::min(limit, c->rbuf.size() * 2));
    }
    auto self = shared_from_this();
    auto handler = [self, c](std::error_code ec, std::size_t n) {
        if (c != self->conn_) return;
        if (ec) {
            if (self->phase_ == phase::closing) return self->finish_close();
            if (!c->head_done) return self->attempt_error(c, ec);
            if (c->body_wanted > 0 || c->response.status != self->expected_status()) {
                c->body_wanted = c->rsize;  // whatever came: classify with it
                return self->on_read(c, 0);
            }
            return self->end_connection(lost(client_errc::connection_lost));
        }
        self->on_read(c, n);
    };
    auto buffer = asio::buffer(c->rbuf.data() + c->rsize, c->rbuf.size() - c->rsize);
    if (c->tls) {
        c->tls->async_read_some(buffer, std::move(handler));
    } else {
        c->tcp.async_read_some(buffer, std::move(handler));
    }
}

void client_core::on_read(const std::shared_ptr<client_connection>& c, std::size_t n) {
    c->last_rx = client_clock::now();
    c->rsize += n;
    if (!c->head_done) {
        const std::size_t head =
            parse_http_response(std::string_view(c->rbuf.data(), c->rsize), c->response);
        if (head == 0) return read_some(c);
        if (head == static_cast<std::size_t>(-1)) {
            return end_connection(lost(client_errc::handshake_failed));
        }
        c->head_done = true;
        std::memmove(c->rbuf.data(), c->rbuf.data() + head, c->rsize - head);
        c->rsize -= head;
        if (c->response.status != expected_status()) {
            std::uint64_t length = 0;
            if (auto v = c->response.header("content-length")) {
                json_u64(*v, length);
            }
            c->body_wanted =
                static_cast<std::size_t>(std::min<std::uint64_t>(length, max_error_body));
            if (c->rbuf.size() < c->body_wanted) c->rbuf.resize(c->body_wanted);
        } else if (auto refused = on_response(c->response)) {
            return end_connection(*refused);
        }
    }
    if (c->response.status != expected_status()) {
        if (c->rsize < c->body_wanted) return read_some(c);
        // The refusal's JSON body names the wire code (PROTOCOL.md 4, 5).
        std::string_view code;
        std::string_view body(c->rbuf.data(), std::min(c->rsize, c->body_wanted));
        json_for_each_member(body, [&](std::string_view key, std::string_view raw) {
            if (key == "code") json_string(raw, scratch_, code);
        });
        const disconnect_class k = classify_http_status(c->response.status, code);
        client_ending e;
        e.error = k.error;
        e.action = k.action;
        e.http_status = c->response.status;
        if (auto s = retry_after_seconds(c->response)) e.at_least = std::chrono::seconds(*s);
        return end_connection(e);
    }
    std::optional<client_ending> ending;
    const std::size_t used = on_bytes(c->rbuf.data(), c->rsize, ending);
    if (c != conn_) return;
    if (ending) return end_connection(*ending);
    if (used > 0) {
        std::memmove(c->rbuf.data(), c->rbuf.data() + used, c->rsize - used);
        c->rsize -= used;
    }
    read_some(c);
}

void client_core::established() {
    auto c = conn_;
    if (!c || c->open) return;
    c->open = true;
    c->connect_timer.cancel();
    phase_ = phase::open;
    policy_.attempt_succeeded(client_clock::now());
    c->ping_outstanding = false;
    client_state s;
    s.kind = client_state_kind::connected;
    emit(s);
    if (conn_ != c) return;
    arm_heartbeat(c);
}

void client_core::arm_heartbeat(const std::shared_ptr<client_connection>& c) {
    if (heartbeat_idle_ <= std::chrono::nanoseconds::zero()) return;
    const auto idle = std::chrono::duration_cast<client_clock::duration>(heartbeat_idle_);
    const auto probe = std::chrono::duration_cast<client_clock::duration>(probe_timeout_);
    const auto deadline = c->ping_outstanding ? c->ping_sent + probe : c->last_rx + idle;
    c->heartbeat_timer.expires_at(deadline);
    c->heartbeat_timer.async_wait([self = shared_from_this(), c, idle, probe](std::error_code ec) {
        if (ec || c != self->conn_ || self->phase_ != phase::open) return;
        const auto now = client_clock::now();
        if (c->ping_outstanding) {
            if (c->last_rx > c->ping_sent) {
                c->ping_outstanding = false;
            } else if (now >= c->ping_sent + probe) {
                return self->end_connection(lost(client_errc::heartbeat_timeout));
            }
        }
        if (!c->ping_outstanding && now - c->last_rx >= idle) {
            if (!self->send_probe()) {
                return self->end_connection(lost(client_errc::heartbeat_timeout));
            }
            c->ping_outstanding = true;
            c->ping_sent = now;
        }
        self->arm_heartbeat(c);
    });
}

void client_core::end_connection(client_ending e) {
    auto c = conn_;
    if (!c) return;
    if (phase_ == phase::closing) return finish_close();
    const bool was_open = c->open;
    conn_.reset();
    ++generation_;
    c->close();
    on_connection_ended();
    const auto now = client_clock::now();
    if (was_open) {
        policy_.connection_lost(now);
    } else {
        policy_.attempt_failed(now, e.action);
    }
    if (e.action == disconnect_action::fatal)
        return go_closed(e.error, e.close_code, e.http_status);
    const auto d =
        policy_.next(now, e.action, std::chrono::duration_cast<client_clock::duration>(e.at_least));
    using decision = basic_reconnect_policy<client_clock>::decision;
    if (d.kind == decision::give_up) {
        return go_closed(make_error_code(client_errc::retries_exhausted), e.close_code,
                         e.http_status);
    }
    schedule(d.kind == decision::circuit_open ? client_state_kind::circuit_open
                                              : client_state_kind::reconnecting,
             d.delay, d.attempt, e);
}

void client_core::restart_now() {
    if (restart_pending_) return;
    restart_pending_ = true;
    asio::post(strand_, [self = shared_from_this()] {
        self->restart_pending_ = false;
        if (self->phase_ == phase::connecting || self->phase_ == phase::open) {
            // A request not written yet will carry the new topics.
            if (!self->conn_->request_sent || !self->topics_changed()) return;
            auto c = std::move(self->conn_);
            ++self->generation_;
            c->close();
            self->on_connection_ended();
            const auto now = client_clock::now();
            if (c->open) {
                self->policy_.connection_lost(now);
            } else {
                self->policy_.attempt_abandoned(now);
            }
            self->phase_ = phase::idle;
            self->start_attempt();
        } else if (self->phase_ == phase::idle && self->want_connect_) {
            self->start_attempt();
        }
    });
}

void client_core::finish_close() {
    ++generation_;
    retry_timer_.cancel();
    if (auto c = std::move(conn_)) {
        c->close();
        on_connection_ended();
    }
    go_closed({}, 0, 0);
}

}  // namespace sluice::detail
