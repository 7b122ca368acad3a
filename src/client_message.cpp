#include "client_message.hpp"

#include <sluice/topic.hpp>

namespace sluice::detail {
namespace {

constexpr unsigned parse_flags = rapidjson::kParseIterativeFlag;

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
    auto it = object.FindMember(name);
    return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string_view as_view(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

std::error_code fail(decoded_message& out, errc code, std::string message) {
    out.error = make_error_code(code);
    out.message = std::move(message);
    return out.error;
}

// The `topic` of subscribe and unsubscribe: a topic or a pattern.
bool take_subscription_topic(const rapidjson::Value& message, decoded_message& out) {
    const auto* topic = member(message, "topic");
    if (!topic || !topic->IsString())
        return !fail(out, errc::bad_request, "topic must be a string");
    out.request.topic = as_view(*topic);
    if (auto check = check_pattern(out.request.topic); !check) {
        return !fail(out, errc::invalid_topic, check.message());
    }
    out.request.pattern = is_pattern(out.request.topic);
    return true;
}

void decode_subscribe(const rapidjson::Value& message, decoded_message& out) {
    if (!take_subscription_topic(message, out)) return;
    auto& r = out.request;
    if (const auto* spec = member(message, "filter")) {
        auto compiled = compile_filter(*spec);
        if (!compiled) {
            fail(out, errc::invalid_filter, compiled.message);
            return;
        }
        r.where = std::move(compiled.compiled);
    }
    const auto* since = member(message, "since");
    if (!since) return;
    if (!since->IsObject()) {
        fail(out, errc::bad_request, "since must be an object");
        return;
    }
    const auto* offset = member(*since, "offset");
    if (!offset || !offset->IsUint64()) {
        fail(out, errc::bad_request, "since.offset must be a non-negative integer");
        return;
    }
    if (r.pattern) {
        fail(out, errc::recovery_unsupported, "since is not supported on a pattern");
        return;
    }
    r.since.emplace();
    r.since->offset = offset->GetUint64();
    // A missing or non-string epoch cannot match any epoch: not recovered.
    const auto* epoch = member(*since, "epoch");
    if (epoch && epoch->IsString()) r.since->epoch = std::string(as_view(*epoch));
}

}  // namespace

std::error_code decode_publish_fields(const rapidjson::Value& object, publish_fields& out,
                                      std::string& message) {
    auto bad = [&](errc code, std::string text) {
        message = std::move(text);
        return make_error_code(code);
    };
    const auto* topic = member(object, "topic");
    if (!topic || !topic->IsString()) return bad(errc::bad_request, "topic must be a string");
    out.topic = as_view(*topic);
    if (auto check = check_topic(out.topic); !check)
        return bad(errc::invalid_topic, check.message());
    out.data = member(object, "data");
    if (!out.data) return bad(errc::bad_request, "data is missing");
    if (const auto* event = member(object, "event")) {
        if (!event->IsString()) return bad(errc::bad_request, "event must be a string");
        out.event = as_view(*event);
        if (auto check = check_event_name(out.event); !check) {
            return bad(errc::bad_request, "event: " + check.message());
        }
    }
    if (const auto* key = member(object, "idempotency_key")) {
        if (!key->IsString()) return bad(errc::bad_request, "idempotency_key must be a string");
        out.idempotency_key = as_view(*key);
        if (out.idempotency_key.empty() || out.idempotency_key.size() > 64) {
            return bad(errc::bad_request, "idempotency_key must be 1-64 bytes");
        }
    }
    return {};
}

decoded_message decode_client_message(std::string_view text, rapidjson::Document& doc) {
    decoded_message out;
    doc.Parse<parse_flags>(text.data(), text.size());
    if (doc.HasParseError()) return fail(out, errc::bad_request, "not JSON"), std::move(out);
    if (!doc.IsObject()) return fail(out, errc::bad_request, "not a JSON object"), std::move(out);
    if (const auto* id = member(doc, "id")) {
        if (!id->IsNumber() && !id->IsString()) {
            return fail(out, errc::bad_request, "id must be a number or a string"), std::move(out);
        }
        out.id = id;
    }
    const auto* type = member(doc, "type");
    if (!type || !type->IsString())
        return fail(out, errc::bad_request, "type must be a string"), std::move(out);
    auto t = as_view(*type);
    auto& r = out.request;
    if (t == "subscribe") {
        r.type = client_type::subscribe;
        decode_subscribe(doc, out);
    } else if (t == "unsubscribe") {
        r.type = client_type::unsubscribe;
        take_subscription_topic(doc, out);
    } else if (t == "publish") {
        r.type = client_type::publish;
        out.error = decode_publish_fields(doc, r.publish, out.message);
    } else if (t == "refresh") {
        r.type = client_type::refresh;
        const auto* token = member(doc, "token");
        if (!token || !token->IsString()) {
            fail(out, errc::bad_request, "token must be a string");
        } else {
            r.token = as_view(*token);
        }
    } else if (t == "ping") {
        r.type = client_type::ping;
    } else {
        fail(out, errc::bad_request, "unknown type");
    }
    return out;
}

}  // namespace sluice::detail
