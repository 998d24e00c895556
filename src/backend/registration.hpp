// Registration with a server and signing-key rotation (DESIGN §2 step 0, §6): the procedures
// behind `dynaseal backend register` and `rotate-key`, run from the command line next to (or
// without) a running backend, talking to the server's /.well-known/dynaseal and admin API.
//
// register: GET <url>/.well-known/dynaseal; its id must be the configured [server] id; pin its
// identity keys (they verify usage callbacks); then POST /admin/v1/backends {"id","jwks",
// "callback_url"}, or on 409 PUT /admin/v1/backends/{id}, so registering again updates keys
// and callback URL. "jwks" holds every signing key not yet retired.
//
// rotate: the new key is registered at the server before it signs anything, and the old key
// stays registered until nothing it signed can still be used:
//   1. retire the retiring keys that are due (below);
//   2. create <signing_key>.next (0600), or reuse it when an earlier rotation stopped half-way;
//   3. POST /admin/v1/backends/{id}/keys with its public key;
//   4. rename it over <signing_key> (atomic): a running backend signs with it within a second;
//   5. mark it active in the store, and the old key retiring (rotated_at = now).
// A retiring key is due at retire_after(): when the running backend can no longer sign with it
// (rotated_at + kSwitchMargin) and the last key it signed has expired at the server (its exp
// + the server's leeway). Due keys are removed with DELETE /admin/v1/backends/{id}/keys/{kid}
// (404: already gone) and marked retired, by `rotate-key --finish` or the next rotation.
//
//   std::string why;
//   auto done = register_with_server(config, store, url, admin_token, now, why);
//   if (!done) fail(done.error(), why);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/config.hpp"
#include "backend/store.hpp"
#include "core/crypto.hpp"

namespace dynaseal::backend {

// Covers the running backend's file check (1 s) and a mint that picked the old key just before
// and waited on the database (busy timeout 5 s) before recording it.
inline constexpr std::int64_t kSwitchMargin = 10;

struct RegisterReport {
  std::string server_id{};
  std::vector<std::string> server_kids{};   // pinned
  std::vector<std::string> backend_kids{};  // registered
  bool updated = false;                     // the backend existed: PUT
};

Result<RegisterReport> register_with_server(const BackendConfig& config, BackendStore& store,
                                            std::string_view server_url,
                                            std::string_view admin_token, std::int64_t now,
                                            std::string& message);

struct RetireReport {
  std::vector<std::string> retired{};
  std::vector<std::pair<std::string, std::int64_t>> pending{};  // kid, due at
};

struct RotateReport {
  std::string new_kid{};
  std::string old_kid{};
  std::int64_t old_due_at = 0;
  RetireReport retire;
};

// When a retiring key may be retired, in unix seconds (see above); `leeway` is the server's.
std::int64_t retire_after(const SigningKeyRecord& key, std::int64_t leeway);

Result<RetireReport> finish_rotation(const BackendConfig& config, BackendStore& store,
                                     std::string_view admin_token, std::int64_t now,
                                     std::string& message);

Result<RotateReport> rotate_signing_key(const BackendConfig& config, BackendStore& store,
                                        std::string_view admin_token, std::int64_t now,
                                        std::string& message);

// The pinned server's identity keys, or server_unknown when `id` is not pinned (store errors
// pass through).
Result<std::vector<PublicKey>> pinned_server_keys(BackendStore& store, std::string_view id);

}  // namespace dynaseal::backend
