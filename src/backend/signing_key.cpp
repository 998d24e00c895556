#include "backend/signing_key.hpp"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "backend/config.hpp"
#include "core/jwk.hpp"
#include "store/key_file.hpp"

namespace dynaseal::backend {

ActiveKey active_key(const SigningKey& key) {
  return {.key = key,
          .kid = jwk_thumbprint(key.public_key()),
          .public_jwk = public_jwk_json(key.public_key())};
}

Result<ActiveKey> read_signing_key(const std::filesystem::path& path) {
  auto key = store::read_private_key_file(path);
  if (!key) return Unexpected(key.error());
  return active_key(*key);
}

Result<ActiveKey> load_or_create_signing_key(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) {
    const SigningKey key = SigningKey::generate();
    // O_EXCL: when another process created it meanwhile, read theirs instead.
    if (store::write_private_key_file(path, key)) {
      spdlog::info("created signing key {} (kid {})", path.string(),
                   jwk_thumbprint(key.public_key()));
      return active_key(key);
    }
  }
  return read_signing_key(path);
}

SigningKeySource::SigningKeySource(std::filesystem::path path) : path_(std::move(path)) {
  loaded_ = file_id(path_);
  auto key = load_or_create_signing_key(path_);
  if (!key) {
    throw ConfigError("signing_key: " + std::string(to_string(key.error())) + ": " +
                      std::string(describe(key.error())) + " (" + path_.string() + ")");
  }
  loaded_ = file_id(path_);
  key_.store(std::make_shared<const ActiveKey>(std::move(*key)));
}

std::shared_ptr<const ActiveKey> SigningKeySource::current(std::int64_t now_ms) {
  std::int64_t due = next_check_ms_.load(std::memory_order_relaxed);
  // One thread wins the check; the others sign with the published key meanwhile.
  if (now_ms >= due && next_check_ms_.compare_exchange_strong(due, now_ms + kCheckEveryMs)) {
    reload();
  }
  return key_.load(std::memory_order_acquire);
}

SigningKeySource::FileId SigningKeySource::file_id(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {.dev = static_cast<std::uint64_t>(st.st_dev),
          .ino = static_cast<std::uint64_t>(st.st_ino),
          .size = static_cast<std::int64_t>(st.st_size),
          .mtime_ns =
              static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

void SigningKeySource::reload() {
  std::lock_guard lock(reload_);
  const FileId now = file_id(path_);
  if (now == loaded_) return;
  loaded_ = now;  // a bad file is reported once, and looked at again when it changes
  auto key = read_signing_key(path_);
  if (!key) {
    spdlog::warn("signing key {} changed but cannot be used ({}); still signing with kid {}",
                 path_.string(), to_string(key.error()), key_.load()->kid);
    return;
  }
  spdlog::info("signing key {} reloaded: now signing with kid {}", path_.string(), key->kid);
  key_.store(std::make_shared<const ActiveKey>(std::move(*key)), std::memory_order_release);
}

}  // namespace dynaseal::backend
