// A hash map keyed by std::string that is looked up by std::string_view without building a
// string: no allocation on the lookup path.
//
//   StringMap<std::size_t> by_name;
//   if (auto it = by_name.find(std::string_view(name)); it != by_name.end()) ...
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace dynaseal {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

}  // namespace dynaseal
