#include "backend/store.hpp"

namespace dynaseal::backend {

std::string_view to_string(KeyState s) {
  switch (s) {
    case KeyState::active: return "active";
    case KeyState::retiring: return "retiring";
    case KeyState::retired: return "retired";
  }
  return "active";  // unreachable for valid enum values
}

}  // namespace dynaseal::backend
