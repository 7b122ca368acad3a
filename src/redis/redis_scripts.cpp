#include "redis/redis_scripts.hpp"

#include <openssl/sha.h>

namespace sluice::detail::redis::script {
namespace {

text make(const char* body) {
    text t{body, {}};
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(t.body.data()), t.body.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned char byte : digest) {
        t.sha1 += hex[byte >> 4];
        t.sha1 += hex[byte & 15];
    }
    return t;
}

}  // namespace

// Offsets go through string.format('%d') because Lua 5.1 prints numbers with
// %.14g.
const text publish = make(R"lua(
local idem_ttl = tonumber(ARGV[10])
if idem_ttl > 0 then
  local first = redis.call('GET', KEYS[3])
  if first then return {0, first} end
end
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
local id = string.format('%d', offset)
redis.call('PEXPIRE', KEYS[1], ARGV[9])
local maxlen = tonumber(ARGV[7])
if maxlen > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', maxlen, id .. '-0',
             'e', epoch, 't', ARGV[5], 'n', ARGV[4], 'd', ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
end
redis.call('PUBLISH', ARGV[1],
           id .. '\n' .. epoch .. '\n' .. ARGV[5] .. '\n' .. ARGV[4] .. '\n' .. ARGV[2] .. '\n' .. ARGV[3])
if idem_ttl > 0 then
  redis.call('SET', KEYS[3], id .. ' ' .. epoch, 'PX', idem_ttl)
end
return {1, offset, epoch}
)lua");

const text sync = make(R"lua(
local meta = redis.call('HMGET', KEYS[1], 'e', 'o')
local epoch, top = meta[1], tonumber(meta[2])
if not epoch or not top then
  epoch = ARGV[6]
  top = 0
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
end
local from = -1
if ARGV[1] ~= '' then
  if ARGV[1] == epoch then from = tonumber(ARGV[2]) else from = 0 end
end
if ARGV[3] == epoch then
  local since = tonumber(ARGV[4])
  if since <= top and top - since <= tonumber(ARGV[5]) and (from < 0 or since < from) then
    from = since
  end
end
local entries = {}
if from >= 0 and from < top then
  entries = redis.call('XRANGE', KEYS[2], string.format('%d', from + 1) .. '-0', '+')
end
return {epoch, top, from, entries}
)lua");

}  // namespace sluice::detail::redis::script
