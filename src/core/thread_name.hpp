// Names the calling thread, as top -H, perf and gdb show it (Linux keeps 15 characters).
//
//   std::thread([this] { name_this_thread("db"); loop(); });
#pragma once

#include <pthread.h>

namespace dynaseal {

inline void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace dynaseal
