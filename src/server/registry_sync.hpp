// Keeps this replica's registry of backends in step with the backends that other replicas
// stored through their admin API (replicas share one database, DESIGN §8): a backend
// registered, re-keyed or removed through any replica is seen by every replica within one
// poll (server_app polls every second).
//
// Only what changed in the database since the last poll is applied, so the local admin API's
// own changes (stored first, then applied here too: a no-op) and the config's static
// [[backend]] entries stay as they are unless the database says otherwise for that id, as at
// start, where a stored registration wins over the config.
//
//   RegistrySync sync(registry, rows_loaded_at_start);
//   sync.apply(*db.backends());   // from a periodic task
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "server/backend_registry.hpp"
#include "store/server_store.hpp"

namespace dynaseal::server {

class RegistrySync {
 public:
  RegistrySync(BackendRegistry& registry, const std::vector<store::RegisteredBackend>& loaded);

  // Applies the rows that appeared, changed or disappeared since the last call (or since the
  // rows given at construction); returns how many. A stored JWKS that does not parse is logged
  // and skipped (the backend keeps its current keys) until its row changes again.
  std::size_t apply(const std::vector<store::RegisteredBackend>& stored);

 private:
  BackendRegistry& registry_;
  std::map<std::string, store::RegisteredBackend, std::less<>> seen_;
};

}  // namespace dynaseal::server
