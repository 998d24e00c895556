// Key material on disk: private JWK files and JWK/JWKS files of public keys.
//
// A private key file is created with mode 0600 and never overwritten; reading one that group or
// others can read is refused (Error::key_file_unsafe), as ssh refuses such identity files, so a
// leaked-by-permissions key is noticed instead of used.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/jwk.hpp"

namespace dynaseal::store {

inline constexpr std::size_t kMaxKeyFileBytes = 64 * 1024;

// Creates `path` (mode 0600, O_EXCL: an existing file is never replaced) holding the private
// JWK of `key`, and syncs it. Error::io_error when the file exists or cannot be written.
Result<void> write_private_key_file(const std::filesystem::path& path, const SigningKey& key);

// Creates `path` (mode 0600, O_EXCL) holding `content`, and syncs it: for secrets such as
// private keys and admin tokens. Error::io_error when the file exists or cannot be written.
Result<void> write_new_secret_file(const std::filesystem::path& path, std::string_view content);

// Reads a private JWK. Error::io_error (missing, unreadable, too large), key_file_unsafe
// (mode allows group or others), key_invalid (not an Ed25519 private JWK).
Result<SigningKey> read_private_key_file(const std::filesystem::path& path);

// Reads one public JWK or a JWKS. Error::io_error or key_invalid.
Result<std::vector<PublicJwk>> read_jwks_file(const std::filesystem::path& path);

// Reads a secret (an admin token): io_error as read_small_file, key_file_unsafe when group or
// others may read or write it.
Result<std::string> read_secret_file(const std::filesystem::path& path, std::size_t max_bytes);

// For state files (SQLite databases): key_file_unsafe when group or others may write `path`
// (they could rewrite the registry, the outbox or the ledger); success when it does not exist;
// io_error when it cannot be checked.
Result<void> check_not_shared_writable(const std::filesystem::path& path);

// Reads a whole file of at most `max_bytes`, or Error::io_error.
Result<std::string> read_small_file(const std::filesystem::path& path, std::size_t max_bytes);

}  // namespace dynaseal::store
