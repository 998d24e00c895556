// The backend's signing key: an Ed25519 private JWK file (0600), created on first start when
// missing, and replaced atomically (rename) by `dynaseal backend rotate-key`.
//
// A running backend picks up a replaced file without a restart: current() looks at the file's
// identity (device, inode, size, modification time) at most once per kCheckEveryMs, on the
// minting path, and reloads it when it changed. Readers never wait for a reload: they take the
// published key with one atomic load. A file that cannot be read (or is not a private JWK with
// mode 0600) keeps the previous key in use and is logged once; it is read again when it changes.
//
//   SigningKeySource keys("acme.jwk");                      // throws ConfigError
//   std::shared_ptr<const ActiveKey> k = keys.current(unix_ms());
//   mint_key(claims, k->key);                                // header kid = k->kid
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "core/crypto.hpp"
#include "core/error.hpp"

namespace dynaseal::backend {

struct ActiveKey {
  SigningKey key;
  std::string kid;         // RFC 7638 thumbprint
  std::string public_jwk;  // {"crv","kid","kty","x"}
};

// Reads the private JWK at `path`; when it does not exist, creates it (0600) with a fresh key.
// io_error, key_file_unsafe or key_invalid when the file is unusable.
Result<ActiveKey> load_or_create_signing_key(const std::filesystem::path& path);

// The key in an existing file (no creation).
Result<ActiveKey> read_signing_key(const std::filesystem::path& path);

ActiveKey active_key(const SigningKey& key);

class SigningKeySource {
 public:
  static constexpr std::int64_t kCheckEveryMs = 1000;

  // Loads (or creates) the key; throws ConfigError (config.hpp) when the file is unusable.
  explicit SigningKeySource(std::filesystem::path path);

  // The key to sign with now; reloads the file first when it changed (see above).
  std::shared_ptr<const ActiveKey> current(std::int64_t now_ms);

 private:
  struct FileId {
    std::uint64_t dev = 0, ino = 0;
    std::int64_t size = 0, mtime_ns = 0;
    bool operator==(const FileId&) const = default;
  };
  static FileId file_id(const std::filesystem::path& path);
  void reload();

  std::filesystem::path path_;
  std::atomic<std::shared_ptr<const ActiveKey>> key_;
  std::atomic<std::int64_t> next_check_ms_{0};
  std::mutex reload_;
  FileId loaded_;  // guarded by reload_
};

}  // namespace dynaseal::backend
