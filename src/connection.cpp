#include "connection.hpp"

#include "http_routes.hpp"
#include "hub_core.hpp"

#include <asio/bind_executor.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <algorithm>

namespace sluice::detail {
namespace {

using clock = std::chrono::steady_clock;

constexpr std::size_t read_budget_per_wakeup = 16;  // reads before yielding to others
constexpr std::size_t shared_read_buffer_size = 64 * 1024;

std::uint8_t* shared_read_buffer() {
    thread_local std::array<std::uint8_t, shared_read_buffer_size> buffer;
    return buffer.data();
}

bool is_set(clock::time_point t) { return t != clock::time_point{}; }

void earliest(clock::time_point& best, clock::time_point candidate) {
    if (is_set(candidate) && (!is_set(best) || candidate < best)) best = candidate;
}

std::int64_t to_ms(std::optional<std::chrono::system_clock::time_point> t) {
    if (!t) return 0;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
    return ms == 0 ? 1 : ms;
}

}  // namespace

connection::connection(std::shared_ptr<server_context> context, asio::ip::tcp::socket socket)
    : context_(std::move(context)),
      id_(context_->next_id.fetch_add(1, std::memory_order_relaxed)),
      strand_(asio::make_strand(socket.get_executor())),
      socket_(std::move(socket)),
      limiter_(sliding_window_options{static_cast<std::uint32_t>(context_->options.client_rate),
                                      context_->options.client_rate_window}) {
    if (context_->options.rate_refusals_before_close > 1) {
        refusals_.emplace(sliding_window_options{
            static_cast<std::uint32_t>(context_->options.rate_refusals_before_close - 1),
            context_->options.client_rate_window});
    }
    std::error_code ec;
    auto endpoint = socket_.remote_endpoint(ec);
    if (!ec) remote_ip_ = endpoint.address().to_string();
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
}

connection::~connection() = default;

void connection::start() {
    asio::dispatch(strand_, [self = shared_from_this()] {
        self->context_->add(self);
        self->head_deadline_ = clock::now() + self->context_->options.head_timeout;
        self->rearm();
        self->read_some();
    });
}

// ---------------------------------------------------------------------------
// Reading

void connection::read_some() {
    if (reading_ || terminated_ || read_paused_) return;
    reading_ = true;
    socket_.async_wait(
        asio::ip::tcp::socket::wait_read,
        asio::bind_executor(strand_, [self = shared_from_this()](const std::error_code& ec) {
            self->reading_ = false;
            self->on_readable(ec);
        }));
}

void connection::on_readable(const std::error_code& ec) {
    if (terminated_) return;
    if (ec) return abort();
    std::uint8_t* buffer = shared_read_buffer();
    for (std::size_t i = 0; i < read_budget_per_wakeup; ++i) {
        std::error_code read_error;
        std::size_t n =
            socket_.read_some(asio::buffer(buffer, shared_read_buffer_size), read_error);
        if (read_error == asio::error::would_block || read_error == asio::error::try_again) break;
        if (read_error) {
            // The peer is gone (EOF or reset): nothing more can be written.
            return abort();
        }
        if (!on_bytes(buffer, n)) return;
    }
    read_some();
}

bool connection::on_bytes(std::uint8_t* data, std::size_t size) {
    switch (transport()) {
    case mode::http: return on_http_bytes(data, size);
    case mode::websocket: return on_ws_bytes(data, size);
    case mode::sse: return true;  // an SSE client has nothing to say; EOF ends it
    }
    return true;
}

bool connection::on_http_bytes(const std::uint8_t* data, std::size_t size) {
    http_buffer_.append(reinterpret_cast<const char*>(data), size);
    if (request_in_progress_) {
        // A pipelined request: keep it until the current one is answered, but
        // never buffer without bound.
        if (http_buffer_.size() >
            context_->options.max_head_bytes + context_->options.max_message_bytes) {
            abort();
            return false;
        }
        read_paused_ = true;
        return false;
    }
    return process_http_buffer();
}

bool connection::process_http_buffer() {
    if (!parser_) {
        parser_.emplace(http_request_limits{context_->options.max_head_bytes, 100});
        body_.reset();
        body_bytes_.clear();
    }
    if (!body_) {
        auto result = parser_->parse(http_buffer_);
        if (result.need_more()) return true;
        if (result.failed()) {
            send_raw(http_error_response(result.http_status, "bad_request",
                                         std::string(result.reason), false));
            finish_request(false);
            return false;
        }
        http_buffer_.erase(0, result.consumed);
        head_deadline_ = {};
        body_.emplace(body_limits{context_->options.max_message_bytes});
        auto start = body_->start(parser_->head());
        if (start.failed()) {
            send_raw(http_error_response(start.http_status, "bad_request",
                                         std::string(start.reason), false));
            finish_request(false);
            return false;
        }
        if (parser_->head().expects_continue() && parser_->head().framing() != body_framing::none) {
            send_raw("HTTP/1.1 100 Continue\r\n\r\n");
        }
    }
    auto result = body_->read(http_buffer_, body_bytes_);
    if (result.failed()) {
        send_raw(http_error_response(result.http_status, "bad_request", std::string(result.reason),
                                     false));
        finish_request(false);
        return false;
    }
    http_buffer_.erase(0, result.consumed);
    if (result.need_more()) return true;

    request_in_progress_ = true;
    read_paused_ = true;
    auto head = std::move(parser_->head_for_move());
    parser_.reset();
    body_.reset();
    route_http_request(*this, head, std::move(body_bytes_));
    body_bytes_.clear();
    if (transport() == mode::websocket && !terminated_) {
        // Bytes that followed the upgrade request are already WebSocket frames.
        std::string rest;
        rest.swap(http_buffer_);
        return rest.empty() ||
               on_ws_bytes(reinterpret_cast<std::uint8_t*>(rest.data()), rest.size());
    }
    return false;  // paused until the answer is queued (finish_request)
}

void connection::finish_request(bool keep_alive) {
    asio::dispatch(strand_, [self = shared_from_this(), keep_alive] {
        if (self->terminated_) return;
        if (!keep_alive || self->context_->stopping.load()) {
            std::lock_guard<std::mutex> lock(self->queue_mutex_);
            self->finish_after_drain_ = true;
            self->schedule_flush_locked();
            return;
        }
        if (self->transport() != mode::http) return;
        self->request_in_progress_ = false;
        self->read_paused_ = false;
        self->head_deadline_ = clock::now() + self->context_->options.head_timeout;
        self->rearm();
        if (!self->http_buffer_.empty() && !self->process_http_buffer()) return;
        self->read_some();
    });
}

connection::rate_decision connection::count_inbound() {
    rate_decision decision;
    auto now = clock::now();
    auto result = limiter_.try_acquire(1, now);
    if (result) return decision;
    decision.allowed = false;
    decision.retry_after = std::chrono::ceil<std::chrono::milliseconds>(result.retry_after);
    context_->stats.rate_limited.fetch_add(1, std::memory_order_relaxed);
    // The refusals of one window are counted by a second limiter: the one
    // that does not fit is the refusal that closes (docs/resilience.md).
    decision.close_after = !refusals_ || !refusals_->try_acquire(1, now);
    return decision;
}

// ---------------------------------------------------------------------------
// WebSocket

void connection::become_websocket(std::optional<std::chrono::system_clock::time_point> expires_at) {
    mode_.store(mode::websocket, std::memory_order_release);
    // The upgrade request is not one of the WebSocket's messages: the session
    // starts with its whole rate window.
    limiter_.reset();
    decoder_ = std::make_unique<ws_decoder>(context_->options.max_message_bytes);
    expires_at_ms_.store(to_ms(expires_at), std::memory_order_relaxed);
    context_->stats.ws_connections.fetch_add(1, std::memory_order_relaxed);
    context_->streams.fetch_add(1, std::memory_order_relaxed);
    request_in_progress_ = false;
    read_paused_ = false;
    head_deadline_ = {};
    ping_due_ = clock::now() + context_->options.ping_interval;
    rearm();
    if (context_->stopping.load()) close(1001, "server going away");
}

void connection::activate_sse(std::optional<std::chrono::system_clock::time_point> expires_at) {
    asio::post(strand_, [self = shared_from_this(), expires_at] {
        if (self->terminated_) return;
        self->become_sse(expires_at);
        // Read on, only to notice when the client goes away.
        self->read_some();
    });
}

void connection::become_sse(std::optional<std::chrono::system_clock::time_point> expires_at) {
    mode_.store(mode::sse, std::memory_order_release);
    expires_at_ms_.store(to_ms(expires_at), std::memory_order_relaxed);
    context_->stats.sse_connections.fetch_add(1, std::memory_order_relaxed);
    context_->streams.fetch_add(1, std::memory_order_relaxed);
    request_in_progress_ = false;
    read_paused_ = false;
    head_deadline_ = {};
    heartbeat_due_ = clock::now() + context_->options.sse_heartbeat;
    rearm();
    // Activated while the server was stopping: end the stream at once.
    if (context_->stopping.load()) close(1001, "server going away");
}

bool connection::on_ws_bytes(std::uint8_t* data, std::size_t size) {
    auto error =
        decoder_->feed(data, size, [this](ws_message&& m) { on_ws_message(std::move(m)); });
    // Everything one read brought goes to the hub in one handler: posting each
    // message alone would interleave the hub's work with the writers' flushes.
    if (!inbox_.empty()) context_->hub->on_ws_texts(shared_from_this(), std::move(inbox_));
    inbox_.clear();
    if (error.close_code != 0) {
        close(error.close_code, error.reason);
        return false;
    }
    return !terminated_;
}

void connection::on_ws_message(ws_message&& message) {
    bool closing;
    {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        closing = close_stage_ != close_stage::open;
    }
    switch (message.opcode) {
    case ws_opcode::text:
        if (closing) return;
        inbox_.push_back({std::move(message.payload), count_inbound()});
        return;
    case ws_opcode::binary:
        if (!closing) close(1003, "binary messages are not supported");
        return;
    case ws_opcode::ping:
        if (!closing) send_control(ws_opcode::pong, std::move(message.payload));
        return;
    case ws_opcode::pong: pong_deadline_ = {}; return;
    case ws_opcode::close: {
        auto code = ws_parse_close_code(message.payload);
        std::unique_lock<std::mutex> lock(queue_mutex_);
        if (close_stage_ == close_stage::close_sent) {
            lock.unlock();
            return terminate();  // the handshake is complete
        }
        lock.unlock();
        peer_closed_ = true;
        if (code == 0) return close(1002, "invalid close frame");
        // Echo the peer's code (RFC 6455 5.5.1), then end.
        close(code == 1005 ? std::uint16_t{1000} : code, "");
        return;
    }
    case ws_opcode::continuation: return;
    }
}

void connection::schedule_flush_locked() {
    if (flush_posted_ || writing_) return;
    flush_posted_ = true;
    asio::post(strand_, [self = shared_from_this()] { self->flush(); });
}

void connection::send_control(ws_opcode opcode, std::string payload) {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (close_stage_ == close_stage::close_sent || close_stage_ == close_stage::finished) return;
    control_.push_back(ws_frame(opcode, payload));
    schedule_flush_locked();
}

void connection::set_expiry(std::optional<std::chrono::system_clock::time_point> expires_at) {
    expires_at_ms_.store(to_ms(expires_at), std::memory_order_relaxed);
    asio::post(strand_, [self = shared_from_this()] { self->rearm(); });
}

// ---------------------------------------------------------------------------
// The queue

std::size_t connection::wire_size(const item& i) const noexcept {
    constexpr std::size_t framing = 16;  // frame header, or SSE field names and newlines
    switch (i.kind) {
    case item_kind::event:
        return framing + publication::ws_event_head().size() + i.sub->sub_json.size() +
               i.pub->ws_event_tail().size() + (transport() == mode::sse ? 64 : 0);
    case item_kind::position: return 0;
    case item_kind::heartbeat: return framing;
    default: return framing + i.bytes.size();
    }
}

void connection::send_event(const publication_ptr& pub, const subscription_ptr& sub, bool replay,
                            clock::time_point enqueued) {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (close_stage_ != close_stage::open) {
        context_->stats.dropped_closed.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    item i{item_kind::event, replay, pub, sub, {}, enqueued};
    if (!replay) {
        auto size = wire_size(i);
        pending_bytes_ += size;
        context_->stats.send_queue_bytes.fetch_add(static_cast<std::int64_t>(size),
                                                   std::memory_order_relaxed);
        if (!is_set(oldest_pending_)) oldest_pending_ = enqueued;
        auto oldest = is_set(oldest_inflight_) ? oldest_inflight_ : oldest_pending_;
        if (pending_bytes_ + inflight_bytes_ > context_->options.max_queue_bytes ||
            enqueued - oldest > context_->options.send_timeout) {
            pending_.push_back(std::move(i));
            return slow_consumer_locked();
        }
    }
    pending_.push_back(std::move(i));
    schedule_flush_locked();
}

void connection::send_position(const publication_ptr& pub, const subscription_ptr& sub) {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (close_stage_ != close_stage::open) return;
    pending_.push_back(item{item_kind::position, false, pub, sub, {}, {}});
    schedule_flush_locked();
}

void connection::send_text(std::string json) {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (close_stage_ != close_stage::open) return;
    item i{item_kind::text, false, nullptr, nullptr, std::move(json), clock::now()};
    auto size = wire_size(i);
    pending_bytes_ += size;
    context_->stats.send_queue_bytes.fetch_add(static_cast<std::int64_t>(size),
                                               std::memory_order_relaxed);
    pending_.push_back(std::move(i));
    schedule_flush_locked();
}

void connection::send_raw(std::string bytes) {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (close_stage_ != close_stage::open) return;
    pending_.push_back(item{item_kind::raw, true, nullptr, nullptr, std::move(bytes), {}});
    schedule_flush_locked();
}

void connection::send_sse_block(std::string block) {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (close_stage_ != close_stage::open) return;
    pending_.push_back(item{item_kind::sse_block, true, nullptr, nullptr, std::move(block), {}});
    schedule_flush_locked();
}

void connection::set_sse_positions(std::vector<token_position> positions, std::string generation) {
    // Read by the writer only after it takes the queue lock, so taking it here
    // orders these writes before any use.
    std::lock_guard<std::mutex> lock(queue_mutex_);
    sse_positions_ = std::move(positions);
    sse_generation_ = std::move(generation);
}

void connection::slow_consumer_locked() {
    if (slow_) return;
    slow_ = true;
    std::uint64_t dropped = 0;
    for (const auto& i : pending_) {
        if (i.kind == item_kind::event) ++dropped;
    }
    context_->stats.dropped_slow_consumer.fetch_add(dropped, std::memory_order_relaxed);
    context_->stats.slow_consumer_disconnects.fetch_add(1, std::memory_order_relaxed);
    context_->stats.send_queue_bytes.fetch_sub(static_cast<std::int64_t>(pending_bytes_),
                                               std::memory_order_relaxed);
    pending_.clear();
    pending_bytes_ = 0;
    oldest_pending_ = {};
    if (transport() == mode::websocket) {
        control_.push_back(ws_frame(ws_opcode::close, ws_close_payload(1013, "slow consumer")));
        close_code_ = 1013;
        close_stage_ = close_stage::closing;
    } else {
        close_stage_ = close_stage::closing;
        finish_after_drain_ = true;
    }
    // If a write is stuck on a full socket, the close frame cannot go out:
    // give it a moment, then drop the connection.
    asio::post(strand_, [self = shared_from_this()] {
        self->close_deadline_ = clock::now() + std::chrono::seconds(1);
        self->rearm();
        self->flush();
    });
}

void connection::close(std::uint16_t code, std::string_view reason) {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (close_stage_ != close_stage::open) return;
    close_stage_ = close_stage::closing;
    if (transport() == mode::websocket) {
        control_.push_back(ws_frame(ws_opcode::close, ws_close_payload(code, reason)));
        close_code_ = code;
        // Replies queued before the close still go out, so the client sees the
        // error that caused it (e.g. the 10th rate_limited refusal).
    } else {
        finish_after_drain_ = true;
    }
    schedule_flush_locked();
}

// ---------------------------------------------------------------------------
// The writer

void connection::flush() {
    // Each turn writes one batch; a batch written at once (or with nothing to
    // write) lets the loop take the next one without going through a handler.
    while (!terminated_) {
        bool have_batch;
        {
            std::lock_guard<std::mutex> lock(queue_mutex_);
            flush_posted_ = false;
            if (writing_) return;
            batch_.swap(pending_);
            batch_control_.swap(control_);
            inflight_bytes_ = pending_bytes_;
            oldest_inflight_ = oldest_pending_;
            pending_bytes_ = 0;
            oldest_pending_ = {};
            have_batch = !batch_.empty() || !batch_control_.empty();
            writing_ = have_batch;
        }
        if (!have_batch) return finish_if_drained();

        buffers_.clear();
        scratch_.clear();
        if (transport() == mode::websocket) {
            append_buffers_ws();
        } else {
            append_buffers_sse();
        }
        // Most batches fit in the socket's send buffer: write them now (the
        // socket is non-blocking) and skip the asynchronous operation, its
        // completion handler and the send-age deadline. Only what does not fit
        // waits. An empty batch (only position updates) completes at once.
        std::error_code write_error;
        std::size_t written = buffers_.empty() ? 0 : socket_.write_some(buffers_, write_error);
        if (write_error && write_error != asio::error::would_block) {
            finish_batch(write_error);
            return;
        }
        if (written == asio::buffer_size(buffers_)) {
            if (!finish_batch({})) return;
            continue;
        }
        consume_written(written);
        if (is_set(oldest_inflight_)) {
            earliest(age_deadline_, oldest_inflight_ + context_->options.send_timeout);
            rearm();
        }
        asio::async_write(socket_, buffers_,
                          asio::bind_executor(strand_, [self = shared_from_this()](
                                                           const std::error_code& ec, std::size_t) {
                              if (self->finish_batch(ec)) self->flush();
                          }));
        return;
    }
}

void connection::consume_written(std::size_t bytes) {
    auto first = buffers_.begin();
    while (first != buffers_.end() && bytes >= first->size()) {
        bytes -= first->size();
        ++first;
    }
    if (first != buffers_.end()) *first += bytes;
    buffers_.erase(buffers_.begin(), first);
}

bool connection::is_close_frame(const std::string& frame) noexcept {
    return !frame.empty() && static_cast<std::uint8_t>(frame[0]) == 0x88;
}

// A write is gathered from segments. Pieces under `copy_threshold` bytes are
// copied into scratch_ (Asio hands at most 16 buffers to one sendmsg, so
// referencing every 30-byte piece would cap a write at four events); larger
// ones are referenced where they are. Offsets, not pointers, are kept until
// finish_gather() because scratch_ may grow meanwhile.
void connection::gather(std::string_view bytes) {
    constexpr std::size_t copy_threshold = 1024;
    if (bytes.size() >= copy_threshold) {
        segments_.push_back({bytes.data(), 0, bytes.size()});
        return;
    }
    scratch_.append(bytes);
    extend_scratch_segment();
}

void connection::extend_scratch_segment() {
    if (segments_.empty() || segments_.back().external) {
        std::size_t start = segments_.empty() ? 0 : scratch_used_;
        segments_.push_back({nullptr, start, 0});
    }
    segments_.back().length = scratch_.size() - segments_.back().offset;
    scratch_used_ = scratch_.size();
}

void connection::finish_gather() {
    for (const auto& s : segments_) {
        buffers_.emplace_back(s.external ? s.external : scratch_.data() + s.offset, s.length);
    }
    segments_.clear();
    scratch_used_ = 0;
}

void connection::append_buffers_ws() {
    // Control frames go first (RFC 6455 allows them between messages), so
    // pongs are never held back by queued data; a close frame goes last, after
    // the replies queued before it, and nothing follows it.
    const std::string* close_frame = nullptr;
    for (const auto& frame : batch_control_) {
        if (!is_close_frame(frame)) {
            gather(frame);
        } else if (!close_frame) {
            close_frame = &frame;
        }
    }
    std::uint8_t header[ws_max_header_bytes];
    auto as_view = [&header](std::size_t n) {
        return std::string_view(reinterpret_cast<const char*>(header), n);
    };
    for (const auto& i : batch_) {
        if (i.kind == item_kind::event) {
            auto head = publication::ws_event_head();
            auto tail = i.pub->ws_event_tail();
            auto n = ws_write_frame_header(
                ws_opcode::text, head.size() + i.sub->sub_json.size() + tail.size(), header);
            gather(as_view(n));
            gather(head);
            gather(i.sub->sub_json);
            gather(tail);
        } else if (i.kind == item_kind::text) {
            gather(as_view(ws_write_frame_header(ws_opcode::text, i.bytes.size(), header)));
            gather(i.bytes);
        } else if (i.kind == item_kind::raw) {
            gather(i.bytes);
        }
    }
    if (close_frame) gather(*close_frame);
    finish_gather();
}

void connection::append_sse_id(std::string_view after) {
    scratch_ += "id: ";
    append_resume_token(scratch_, sse_generation_, sse_positions_);
    scratch_ += after;
    extend_scratch_segment();
}

void connection::append_buffers_sse() {
    static constexpr std::string_view data_field = "data: ";
    static constexpr std::string_view block_end = "\n\n";
    for (const auto& i : batch_) {
        switch (i.kind) {
        case item_kind::event:
        case item_kind::position: {
            int index = i.sub->position_index;
            if (index >= 0 && static_cast<std::size_t>(index) < sse_positions_.size()) {
                auto& p = sse_positions_[static_cast<std::size_t>(index)];
                if (p.epoch != i.pub->epoch()) p.epoch.assign(i.pub->epoch());
                p.offset = i.pub->offset();
            }
            if (i.kind == item_kind::position) {
                moved_without_send_ = true;
                break;
            }
            moved_without_send_ = false;
            append_sse_id("\n");
            gather(i.pub->sse_event_field());
            gather(data_field);
            gather(publication::ws_event_head());
            gather(i.sub->sub_json);
            gather(i.pub->ws_event_tail());
            gather(block_end);
            break;
        }
        case item_kind::sse_block:
            append_sse_id("\n");
            gather(i.bytes);
            break;
        case item_kind::heartbeat:
            if (moved_without_send_) {
                append_sse_id("\n\n");
                moved_without_send_ = false;
            } else {
                gather(": ping\n\n");
            }
            break;
        case item_kind::raw:
        case item_kind::text: gather(i.bytes); break;
        }
    }
    finish_gather();
}

bool connection::finish_batch(const std::error_code& ec) {
    if (terminated_) return false;
    if (ec) {
        abort();
        return false;
    }
    // Account the deliveries of this batch.
    auto now = clock::now();
    std::uint64_t delivered = 0;
    for (const auto& i : batch_) {
        if (i.kind != item_kind::event) continue;
        ++delivered;
        if (!i.replay) context_->stats.observe_delivery(now - i.enqueued);
    }
    if (delivered) context_->stats.delivered.fetch_add(delivered, std::memory_order_relaxed);
    bool sent_close = std::any_of(batch_control_.begin(), batch_control_.end(), is_close_frame);
    batch_.clear();
    batch_control_.clear();
    if (buffers_.capacity() > 256) buffers_ = {};
    if (scratch_.capacity() > 64 * 1024) scratch_ = {};
    {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        writing_ = false;
        context_->stats.send_queue_bytes.fetch_sub(static_cast<std::int64_t>(inflight_bytes_),
                                                   std::memory_order_relaxed);
        inflight_bytes_ = 0;
        oldest_inflight_ = {};
        if (sent_close) {
            close_stage_ = close_stage::close_sent;
            pending_.clear();
        }
    }
    age_deadline_ = {};
    if (sent_close) {
        context_->stats.count_close(close_code_);
        if (peer_closed_) {
            terminate();
            return false;
        }
        // Wait for the peer's close frame, then end (RFC 6455 7.1.1).
        close_deadline_ = clock::now() + context_->options.close_timeout;
        rearm();
        return false;
    }
    return true;
}

void connection::finish_if_drained() {
    bool finish;
    {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        finish = finish_after_drain_ && !writing_ && pending_.empty() && control_.empty();
    }
    if (!finish) return;
    // HTTP without keep-alive, or an SSE stream that ends: a clean TCP close.
    std::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    terminate();
}

// ---------------------------------------------------------------------------
// Deadlines

void connection::rearm() {
    if (terminated_) return;
    clock::time_point next{};
    earliest(next, head_deadline_);
    earliest(next, ping_due_);
    earliest(next, pong_deadline_);
    earliest(next, age_deadline_);
    earliest(next, close_deadline_);
    earliest(next, heartbeat_due_);
    earliest(next, drain_close_at_);
    auto expires_ms = expires_at_ms_.load(std::memory_order_relaxed);
    if (expires_ms != 0) {
        auto expiry_sys =
            std::chrono::system_clock::time_point(std::chrono::milliseconds(expires_ms)) +
            context_->options.token_grace;
        auto remaining = expiry_sys - std::chrono::system_clock::now();
        earliest(next, clock::now() + std::chrono::duration_cast<clock::duration>(remaining));
    }
    if (!is_set(next)) return;
    if (is_set(armed_for_) && armed_for_ <= next && armed_for_ > clock::now()) return;
    armed_for_ = next;
    context_->timers->schedule(std::weak_ptr<timed_target>(shared_from_this()), next);
}

void connection::wake() {
    asio::dispatch(strand_, [self = shared_from_this()] {
        if (self->terminated_) return;
        auto now = clock::now();
        self->armed_for_ = {};
        const auto& o = self->context_->options;
        auto due = [now](clock::time_point t) { return is_set(t) && t <= now; };
        if (due(self->close_deadline_)) return self->abort();
        if (due(self->head_deadline_)) return self->abort();
        if (due(self->drain_close_at_)) {
            self->drain_close_at_ = {};
            self->close(1001, "server going away");
        }
        auto expires_ms = self->expires_at_ms_.load(std::memory_order_relaxed);
        if (expires_ms != 0 &&
            std::chrono::system_clock::now() >=
                std::chrono::system_clock::time_point(std::chrono::milliseconds(expires_ms)) +
                    o.token_grace) {
            self->expires_at_ms_.store(0, std::memory_order_relaxed);
            self->close(4401, "token expired");
        }
        if (due(self->pong_deadline_)) {
            self->pong_deadline_ = {};
            self->ping_due_ = {};
            self->close(4001, "ping timeout");
        }
        if (due(self->ping_due_)) {
            self->send_control(ws_opcode::ping, {});
            self->pong_deadline_ = now + o.pong_timeout;
            self->ping_due_ = now + o.ping_interval;
        }
        if (due(self->heartbeat_due_)) {
            {
                std::lock_guard<std::mutex> lock(self->queue_mutex_);
                if (self->close_stage_ == close_stage::open) {
                    self->pending_.push_back(
                        item{item_kind::heartbeat, true, nullptr, nullptr, {}, {}});
                }
            }
            self->heartbeat_due_ = now + o.sse_heartbeat;
            self->flush();
        }
        if (due(self->age_deadline_)) {
            self->age_deadline_ = {};
            std::lock_guard<std::mutex> lock(self->queue_mutex_);
            auto oldest =
                is_set(self->oldest_inflight_) ? self->oldest_inflight_ : self->oldest_pending_;
            if (is_set(oldest) && now - oldest >= o.send_timeout) self->slow_consumer_locked();
        }
        self->rearm();
    });
}

void connection::drain_at(clock::time_point when) {
    asio::dispatch(strand_, [self = shared_from_this(), when] {
        if (self->terminated_) return;
        switch (self->transport()) {
        case mode::websocket:
            self->drain_close_at_ = when;
            self->rearm();
            break;
        case mode::sse: self->close(1001, "server going away"); break;
        case mode::http:
            if (!self->request_in_progress_) self->abort();
            break;
        }
    });
}

// ---------------------------------------------------------------------------
// The end

void connection::abort() {
    std::error_code ignored;
    socket_.close(ignored);
    terminate();
}

void connection::terminate() {
    if (terminated_) return;
    terminated_ = true;
    std::error_code ignored;
    socket_.close(ignored);
    std::uint64_t dropped = 0;
    {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        for (const auto& i : pending_) {
            if (i.kind == item_kind::event) ++dropped;
        }
        context_->stats.send_queue_bytes.fetch_sub(
            static_cast<std::int64_t>(pending_bytes_ + inflight_bytes_), std::memory_order_relaxed);
        pending_.clear();
        control_.clear();
        pending_bytes_ = inflight_bytes_ = 0;
        close_stage_ = close_stage::finished;
    }
    if (dropped) context_->stats.dropped_closed.fetch_add(dropped, std::memory_order_relaxed);
    batch_.clear();
    switch (transport()) {
    case mode::websocket:
        context_->stats.ws_connections.fetch_sub(1, std::memory_order_relaxed);
        context_->streams.fetch_sub(1, std::memory_order_relaxed);
        break;
    case mode::sse:
        context_->stats.sse_connections.fetch_sub(1, std::memory_order_relaxed);
        context_->streams.fetch_sub(1, std::memory_order_relaxed);
        break;
    case mode::http: break;
    }
    context_->hub->detach(shared_from_this());
    context_->remove(id_);
}

}  // namespace sluice::detail
