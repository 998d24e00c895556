#include "support/services.hpp"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace dynaseal::testing {
namespace {

namespace fs = std::filesystem;

std::string read_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line) || line.empty()) {
    throw std::runtime_error("test services: cannot read " + path.string() +
                             " (is the CTest fixture test_services running? "
                             "scripts/test-services start " DYNASEAL_TEST_SERVICES_DIR ")");
  }
  return line;
}

// Runs scripts/test-services with the arguments; throws when it fails.
void run_script(const std::string& args) {
  const std::string command = DYNASEAL_SOURCE_DIR "/scripts/test-services " + args;
  const int status = std::system(command.c_str());
  if (status != 0) throw std::runtime_error("test services: `" + command + "` failed");
}

fs::path make_temp_dir(const char* prefix) {
  std::string pattern = (fs::temp_directory_path() / prefix).string() + ".XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

void signal_pid_file(const fs::path& pid_file, int sig) {
  const pid_t pid = static_cast<pid_t>(std::stol(read_line(pid_file)));
  if (kill(pid, sig) != 0) throw std::runtime_error("cannot signal " + pid_file.string());
}

}  // namespace

std::string shared_redis_url() {
  return read_line(fs::path(DYNASEAL_TEST_SERVICES_DIR) / "redis/url");
}

std::string shared_redis_cluster_url() {
  return read_line(fs::path(DYNASEAL_TEST_SERVICES_DIR) / "cluster/url");
}

std::string shared_postgres_url() {
  return read_line(fs::path(DYNASEAL_TEST_SERVICES_DIR) / "postgres/url");
}

RedisServer::RedisServer() : dir_(make_temp_dir("dynaseal-redis")) { start(); }

RedisServer::~RedisServer() {
  std::error_code ignored;
  try {
    stop();
  } catch (const std::exception&) {
  }
  fs::remove_all(dir_, ignored);
}

RedisCluster::RedisCluster() : dir_(make_temp_dir("dynaseal-cluster")) {
  run_script("cluster start " + dir_.string());
}

RedisCluster::~RedisCluster() {
  std::error_code ignored;
  try {
    run_script("cluster stop " + dir_.string());
  } catch (const std::exception&) {
  }
  fs::remove_all(dir_, ignored);
}

std::string RedisCluster::url() const { return read_line(dir_ / "url"); }

std::vector<std::string> RedisCluster::node_urls() const {
  std::vector<std::string> urls;
  for (int i = 1; i <= 3; ++i) urls.push_back(read_line(dir_ / ("n" + std::to_string(i)) / "url"));
  return urls;
}

std::string RedisServer::url() const { return read_line(dir_ / "url"); }
int RedisServer::port() const { return std::stoi(read_line(dir_ / "port")); }
void RedisServer::start() { run_script("redis start " + dir_.string()); }
void RedisServer::stop() { run_script("redis stop " + dir_.string()); }
void RedisServer::pause() { signal_pid_file(dir_ / "pid", SIGSTOP); }
void RedisServer::resume() { signal_pid_file(dir_ / "pid", SIGCONT); }

PostgresServer::PostgresServer() : dir_(make_temp_dir("dynaseal-postgres")) { start(); }

PostgresServer::~PostgresServer() {
  std::error_code ignored;
  try {
    run_script("postgres remove " + dir_.string());
  } catch (const std::exception&) {
  }
  fs::remove_all(dir_, ignored);
}

std::string PostgresServer::url() const { return read_line(dir_ / "url"); }
void PostgresServer::start() { run_script("postgres start " + dir_.string()); }
void PostgresServer::stop() { run_script("postgres stop " + dir_.string()); }
void PostgresServer::restart() { run_script("postgres restart " + dir_.string()); }

}  // namespace dynaseal::testing
