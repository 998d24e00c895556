#include "backend/store.hpp"

#include "backend/postgres_store.hpp"
#include "backend/sqlite_store.hpp"
#include "store/postgres_url.hpp"

namespace dynaseal::backend {

std::string_view to_string(KeyState s) {
  switch (s) {
    case KeyState::active: return "active";
    case KeyState::retiring: return "retiring";
    case KeyState::retired: return "retired";
  }
  return "active";  // unreachable for valid enum values
}

Result<Recorded> BackendStore::record_usage(const UsageEvent& event, std::string_view raw_body,
                                            std::int64_t received_at, const CostFn& cost) {
  const NewEvent one{
      .event = event, .raw_body = std::string(raw_body), .received_at = received_at, .cost = cost};
  auto results = record_events(std::span(&one, 1));
  if (!results) return Unexpected(results.error());
  return std::move(results->front());
}

Result<std::unique_ptr<BackendStore>> open_backend_store(std::string_view db,
                                                         const std::filesystem::path& sqlite_path,
                                                         std::string* message) {
  if (store::is_postgres_url(db)) return open_postgres_store(db, message);
  return open_sqlite_store(sqlite_path, message);
}

}  // namespace dynaseal::backend
