#include "redis/redis_link.hpp"

#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>

#include <string>
#include <utility>

namespace sluice::detail::redis {

// The hiredis `ev` hooks on an Asio descriptor. It lives from attach until
// hiredis calls `cleanup` (on every free), plus one posted turn: hiredis
// calls `onDisconnect` after `cleanup`, and reads `ac->data` (this) there.
class asio_events : public std::enable_shared_from_this<asio_events> {
public:
    asio_events(link::strand_type strand, redisAsyncContext* ac, std::weak_ptr<link> owner)
        : descriptor_(strand, ac->c.fd), ac_(ac), owner_(std::move(owner)) {}

    static void attach(const std::shared_ptr<asio_events>& self) {
        self->keep_ = self;
        redisAsyncContext* ac = self->ac_;
        ac->data = self.get();
        ac->ev.data = self.get();
        ac->ev.addRead = [](void* p) { static_cast<asio_events*>(p)->want(true, true); };
        ac->ev.delRead = [](void* p) { static_cast<asio_events*>(p)->want(true, false); };
        ac->ev.addWrite = [](void* p) { static_cast<asio_events*>(p)->want(false, true); };
        ac->ev.delWrite = [](void* p) { static_cast<asio_events*>(p)->want(false, false); };
        ac->ev.cleanup = [](void* p) { static_cast<asio_events*>(p)->cleanup(); };
    }

    const std::weak_ptr<link>& owner() const noexcept { return owner_; }

private:
    void want(bool read, bool on) {
        (read ? want_read_ : want_write_) = on;
        if (on) arm(read);
    }

    void arm(bool read) {
        bool& waiting = read ? reading_ : writing_;
        if (waiting || !alive_) return;
        waiting = true;
        descriptor_.async_wait(
            read ? asio::posix::stream_descriptor::wait_read
                 : asio::posix::stream_descriptor::wait_write,
            [self = shared_from_this(), read](const std::error_code& ec) {
                (read ? self->reading_ : self->writing_) = false;
                if (ec || !self->alive_) return;
                if (read ? self->want_read_ : self->want_write_) {
                    if (read) {
                        redisAsyncHandleRead(self->ac_);
                    } else {
                        redisAsyncHandleWrite(self->ac_);
                    }
                }
                // The context may be gone now (cleanup ran).
                if (self->alive_ && (read ? self->want_read_ : self->want_write_)) self->arm(read);
            });
    }

    void cleanup() {
        alive_ = false;
        want_read_ = want_write_ = false;
        std::error_code ignored;
        descriptor_.cancel(ignored);
        descriptor_.release();  // hiredis closes the fd itself
        asio::post(descriptor_.get_executor(), [keep = std::move(keep_)] {});
    }

    asio::posix::stream_descriptor descriptor_;
    redisAsyncContext* ac_;
    std::weak_ptr<link> owner_;
    std::shared_ptr<asio_events> keep_;
    bool want_read_ = false;
    bool want_write_ = false;
    bool reading_ = false;
    bool writing_ = false;
    bool alive_ = true;
};

namespace {

struct reply_box {
    link::reply_handler handler;
    std::weak_ptr<link> owner;
    link::strand_type strand;
    bool track;
};

std::shared_ptr<link> owner_of(const redisAsyncContext* ac) {
    auto* events = static_cast<asio_events*>(ac->data);
    return events ? events->owner().lock() : nullptr;
}

void on_reply(redisAsyncContext*, void* r, void* privdata) {
    std::unique_ptr<reply_box> box(static_cast<reply_box*>(privdata));
    auto* reply = static_cast<redisReply*>(r);
    if (reply == nullptr) {
        asio::post(box->strand, [handler = std::move(box->handler)] { handler(nullptr); });
        return;
    }
    if (box->track) {
        if (auto owner = box->owner.lock()) owner->reply_arrived();
    }
    box->handler(reply);
}

void on_message(redisAsyncContext* ac, void* r, void*) {
    if (r == nullptr) return;
    if (auto owner = owner_of(ac)) owner->handle_message(static_cast<redisReply*>(r));
}

void on_connect(const redisAsyncContext* ac, int status) {
    if (auto owner = owner_of(ac)) owner->handle_connect(status);
}

void on_disconnect(const redisAsyncContext* ac, int) {
    if (auto owner = owner_of(ac)) owner->handle_disconnect();
}

}  // namespace

std::string describe(const redisReply* reply) {
    if (reply == nullptr) return "no reply (connection lost or timed out)";
    switch (reply->type) {
    case REDIS_REPLY_ERROR:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_STRING: return std::string(reply->str, reply->len);
    case REDIS_REPLY_INTEGER: return std::to_string(reply->integer);
    case REDIS_REPLY_NIL: return "nil";
    default: return "array";
    }
}

link::link(strand_type strand, const redis_options& options, std::string name)
    : strand_(std::move(strand)),
      options_(options),
      name_(std::move(name)),
      connect_timer_(strand_),
      command_timer_(strand_) {}

link::~link() {
    closing_ = true;
    if (ac_) {
        redisAsyncContext* ac = std::exchange(ac_, nullptr);
        redisAsyncFree(ac);
    }
}

void link::connect(std::function<void(std::error_code, std::string)> done) {
    connect_done_ = std::move(done);
    ac_ = redisAsyncConnect(options_.host.c_str(), options_.port);
    if (ac_ == nullptr || ac_->err) {
        std::string reason = ac_ ? ac_->errstr : "out of memory";
        if (ac_) redisAsyncFree(std::exchange(ac_, nullptr));
        fail("connect: " + reason);
        return;
    }
    events_ = std::make_shared<asio_events>(strand_, ac_, weak_from_this());
    asio_events::attach(events_);
    // Set after the hooks: setting it asks for the first write event.
    redisAsyncSetConnectCallback(ac_, &on_connect);
    redisAsyncSetDisconnectCallback(ac_, &on_disconnect);
    connect_timer_.expires_after(options_.connect_timeout);
    connect_timer_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
        if (ec) return;
        if (auto self = weak.lock(); self && !self->ready_) self->fail("connect timeout");
    });
}

void link::handle_connect(int status) {
    if (status != REDIS_OK) {
        std::string reason = ac_ && ac_->errstr ? ac_->errstr : "refused";
        ac_ = nullptr;  // hiredis frees it after this callback
        fail("connect: " + reason);
        return;
    }
    handshake();
}

void link::handshake() {
    // AUTH and SELECT are pipelined; the link is ready when the last answers.
    auto step = [weak = weak_from_this()](const char* what, bool last) {
        return [weak, what, last](const redisReply* reply) {
            auto self = weak.lock();
            if (!self) return;
            if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
                self->fail(std::string(what) + ": " + describe(reply));
                return;
            }
            if (last && !self->ready_ && self->ac_) {
                self->ready_ = true;
                self->connect_timer_.cancel();
                if (auto done = std::move(self->connect_done_)) {
                    asio::post(self->strand_, [done = std::move(done)] { done({}, {}); });
                }
            }
        };
    };
    std::string db = std::to_string(options_.database);
    if (!options_.password.empty()) {
        if (options_.username.empty()) {
            send({"AUTH", options_.password}, step("AUTH", false), true);
        } else {
            send({"AUTH", options_.username, options_.password}, step("AUTH", false), true);
        }
    }
    send({"SELECT", db}, step("SELECT", true), true);
}

void link::fail(std::string reason) {
    const bool was_ready = ready_;
    ready_ = false;
    connect_timer_.cancel();
    command_timer_.cancel();
    command_timer_armed_ = false;
    sent_.clear();
    if (ac_) {
        closing_ = true;  // our own free: handle_disconnect must not report twice
        redisAsyncFree(std::exchange(ac_, nullptr));
        closing_ = false;
    }
    if (auto done = std::move(connect_done_)) {
        connect_done_ = nullptr;
        asio::post(strand_, [done = std::move(done), reason] {
            done(std::make_error_code(std::errc::not_connected), reason);
        });
    } else if (was_ready && on_closed_) {
        asio::post(strand_, [handler = std::move(on_closed_), reason] { handler(reason); });
        on_closed_ = nullptr;
    }
}

void link::handle_disconnect() {
    if (closing_) return;
    // hiredis frees the context after this callback (an I/O error or EOF).
    std::string reason = ac_ && ac_->errstr ? ac_->errstr : "connection closed";
    ac_ = nullptr;
    fail("disconnected: " + reason);
}

void link::close() {
    connect_done_ = nullptr;
    on_closed_ = nullptr;
    on_message_ = nullptr;
    fail("closed");
}

bool link::command(const std::vector<std::string_view>& argv, reply_handler handler) {
    if (!ready_) return false;
    return send(argv, std::move(handler), true);
}

bool link::send(const std::vector<std::string_view>& argv, reply_handler handler, bool track) {
    if (ac_ == nullptr) return false;
    std::vector<const char*> args;
    std::vector<std::size_t> lengths;
    args.reserve(argv.size());
    lengths.reserve(argv.size());
    for (auto a : argv) {
        args.push_back(a.data());
        lengths.push_back(a.size());
    }
    auto* box = new reply_box{std::move(handler), weak_from_this(), strand_, track};
    int rc = redisAsyncCommandArgv(ac_, &on_reply, box, static_cast<int>(args.size()), args.data(),
                                   lengths.data());
    if (rc != REDIS_OK) {
        delete box;
        return false;
    }
    if (track) {
        sent_.push_back(std::chrono::steady_clock::now());
        arm_command_timer();
    }
    return true;
}

bool link::subscribe(const std::vector<std::string>& channels, message_handler handler) {
    if (!ready_ || ac_ == nullptr) return false;
    on_message_ = std::move(handler);
    std::vector<const char*> args{"SUBSCRIBE"};
    std::vector<std::size_t> lengths{9};
    for (const auto& c : channels) {
        args.push_back(c.data());
        lengths.push_back(c.size());
    }
    return redisAsyncCommandArgv(ac_, &on_message, nullptr, static_cast<int>(args.size()),
                                 args.data(), lengths.data()) == REDIS_OK;
}

void link::handle_message(const redisReply* reply) {
    // ["message", channel, payload]; subscribe confirmations are ignored.
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    const redisReply* kind = reply->element[0];
    if (kind->type != REDIS_REPLY_STRING || std::string_view(kind->str, kind->len) != "message")
        return;
    if (on_message_) {
        on_message_(std::string_view(reply->element[1]->str, reply->element[1]->len),
                    std::string_view(reply->element[2]->str, reply->element[2]->len));
    }
}

void link::reply_arrived() {
    if (!sent_.empty()) sent_.pop_front();
}

void link::arm_command_timer() {
    if (command_timer_armed_ || sent_.empty()) return;
    command_timer_armed_ = true;
    command_timer_.expires_at(sent_.front() + options_.command_timeout);
    command_timer_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
        auto self = weak.lock();
        if (!self || ec) return;
        self->command_timer_armed_ = false;
        if (!self->sent_.empty() && std::chrono::steady_clock::now() - self->sent_.front() >=
                                        self->options_.command_timeout) {
            self->fail("command timeout");
            return;
        }
        self->arm_command_timer();
    });
}

}  // namespace sluice::detail::redis
