#include "store/redis_scripts.hpp"

#include <stdexcept>

#include <openssl/evp.h>

namespace dynaseal::store {
namespace {

// Shared by every script. A count is {high, low} in base 1e9: both halves are exact doubles.
constexpr std::string_view kPrelude = R"lua(
local B = 1000000000
local MAX = {9223372036, 854775807}
local ZERO, ONE = {0, 0}, {0, 1}
local function lt(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end
local function num(s)
  if type(s) ~= 'string' or #s > 19 or not string.find(s, '^%d+$') then
    error('dks: corrupt count')
  end
  local v = {0, tonumber(s)}
  if #s > 9 then v = {tonumber(string.sub(s, 1, #s - 9)), tonumber(string.sub(s, #s - 8))} end
  if lt(MAX, v) then error('dks: corrupt count') end
  return v
end
local function str(a)
  if a[1] == 0 then return string.format('%.0f', a[2]) end
  return string.format('%.0f%09.0f', a[1], a[2])
end
local function add(a, b)
  local hi, lo = a[1] + b[1], a[2] + b[2]
  if lo >= B then hi, lo = hi + 1, lo - B end
  local r = {hi, lo}
  if lt(MAX, r) then return MAX end
  return r
end
local function sub(a, b)
  if not lt(b, a) then return ZERO end
  local hi, lo = a[1] - b[1], a[2] - b[2]
  if lo < 0 then hi, lo = hi - 1, lo + B end
  return {hi, lo}
end
local function time(s)
  if type(s) ~= 'string' or #s > 17 or not string.find(s, '^%-?%d+$') then
    error('dks: corrupt time')
  end
  return tonumber(s)
end
local function fmt(t) return string.format('%.0f', t) end
local function clock(now)
  local t = tonumber(redis.call('TIME')[1])
  if now > t then return now end
  return t
end
)lua";

constexpr std::string_view kConsume = R"lua(
local now = clock(time(ARGV[1]))
local expires_at = time(ARGV[2])
if now >= expires_at then return {1} end
local s = redis.call('HMGET', KEYS[2], 'at', 'until')
if s[2] and time(s[2]) > now and time(ARGV[3]) <= time(s[1]) then return {2} end
local f = redis.call('HMGET', KEYS[1], 'uses', 'reserved', 'spent', 'revoked', 'deadline')
local uses, reserved, spent, revoked, deadline = ZERO, ZERO, ZERO, 0, 0
if f[5] and time(f[5]) > now then
  uses, reserved, spent = num(f[1]), num(f[2]), num(f[3])
  revoked, deadline = time(f[4]), time(f[5])
end
if now < revoked then return {2} end
if not lt(uses, num(ARGV[4])) then return {3} end
local granted = num(ARGV[6])
if ARGV[5] ~= '' then
  local left = sub(sub(num(ARGV[5]), spent), reserved)
  if lt(left, num(ARGV[10])) then return {4} end
  if lt(left, granted) then granted = left end
end
uses = add(uses, ONE)
if expires_at > deadline then deadline = expires_at end
-- The journal first: Redis does not undo a script's writes when a later command fails, and a
-- use must never be counted without its entry.
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[7] .. '.' .. str(uses),
             fmt(now) .. ' ' .. ARGV[8] .. str(uses) .. ARGV[9])
end
redis.call('HSET', KEYS[1], 'uses', str(uses), 'reserved', str(add(reserved, granted)),
           'spent', str(spent), 'revoked', fmt(revoked), 'deadline', fmt(deadline))
redis.call('EXPIREAT', KEYS[1], fmt(deadline))
return {0, str(uses), str(granted)}
)lua";

constexpr std::string_view kSettle = R"lua(
redis.call('HDEL', KEYS[2], ARGV[4])
local now = clock(time(ARGV[1]))
local f = redis.call('HMGET', KEYS[1], 'reserved', 'spent', 'deadline')
if not f[3] or time(f[3]) <= now then return 0 end
redis.call('HSET', KEYS[1], 'reserved', str(sub(num(f[1]), num(ARGV[2]))),
           'spent', str(add(num(f[2]), num(ARGV[3]))))
return 0
)lua";

constexpr std::string_view kRevokeJti = R"lua(
local now = clock(time(ARGV[1]))
local till = time(ARGV[2])
if till <= now then return 0 end
local f = redis.call('HMGET', KEYS[1], 'revoked', 'deadline')
if f[2] and time(f[2]) > now then
  local revoked, deadline = time(f[1]), time(f[2])
  if till > revoked then revoked = till end
  if till > deadline then deadline = till end
  redis.call('HSET', KEYS[1], 'revoked', fmt(revoked), 'deadline', fmt(deadline))
  redis.call('EXPIREAT', KEYS[1], fmt(deadline))
else
  redis.call('HSET', KEYS[1], 'uses', '0', 'reserved', '0', 'spent', '0',
             'revoked', fmt(till), 'deadline', fmt(till))
  redis.call('EXPIREAT', KEYS[1], fmt(till))
end
return 0
)lua";

constexpr std::string_view kRevokeSub = R"lua(
local now = clock(time(ARGV[1]))
local at, till = time(ARGV[2]), time(ARGV[3])
if till <= now then return 0 end
local f = redis.call('HMGET', KEYS[1], 'at', 'until')
if f[2] and time(f[2]) > now then
  local old_at, old_till = time(f[1]), time(f[2])
  if old_at > at then at = old_at end
  if old_till > till then till = old_till end
end
redis.call('HSET', KEYS[1], 'at', fmt(at), 'until', fmt(till))
redis.call('EXPIREAT', KEYS[1], fmt(till))
return 0
)lua";

std::string sha1_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("SHA-1 is not available");  // at start-up only: a broken libcrypto
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

RedisScript make(std::string_view body) {
  std::string text(kPrelude);
  text.append(body);
  RedisScript script{.body = std::move(text), .sha1 = {}};
  script.sha1 = sha1_hex(script.body);
  return script;
}

}  // namespace

const RedisScript& redis_consume_script() {
  static const RedisScript script = make(kConsume);
  return script;
}

const RedisScript& redis_settle_script() {
  static const RedisScript script = make(kSettle);
  return script;
}

const RedisScript& redis_revoke_jti_script() {
  static const RedisScript script = make(kRevokeJti);
  return script;
}

const RedisScript& redis_revoke_sub_script() {
  static const RedisScript script = make(kRevokeSub);
  return script;
}

}  // namespace dynaseal::store
