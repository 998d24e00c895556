// dynaseal chat: the edge client from the command line (DESIGN §2, §11). Gets a dynamic key
// from the backend with the user's token, then asks the server the backend named.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "cli/app.hpp"
#include "client/client.hpp"
#include "store/key_file.hpp"

namespace dynaseal::cli {
namespace {

struct ChatOptions {
  std::string backend, token_file, model, prompt, ca_file;
  std::int64_t max_tokens = 0;  // 0: not asked for; the plan's cap applies
  bool stream = false;
  bool verbose = false;
};

std::string trimmed(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s.substr(first);
}

// The error line: one line whatever the peer put in its message.
int fail_client(const client::ClientError& e) {
  std::string message = e.message;
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::cerr << "error: " << e.code << ": " << message << '\n';
  return kExitFailed;
}

// The user token: the file's content without surrounding whitespace; nullopt after reporting
// why it cannot be used.
std::optional<std::string> read_user_token(const std::string& path) {
  auto text = store::read_secret_file(path, 64 * 1024);
  if (!text && text.error() == Error::key_file_unsafe) {
    fail(Error::key_file_unsafe,
         "the token file " + path + " can be read or written by group or others: chmod 600 it");
    return std::nullopt;
  }
  if (!text) {
    fail(Error::io_error, "cannot read the token file " + path);
    return std::nullopt;
  }
  std::string token = trimmed(*text);
  if (token.empty()) {
    fail(Error::io_error, "the token file " + path + " is empty");
    return std::nullopt;
  }
  return token;
}

// The prompt argument, or stdin for "-" (without the trailing newline of echo).
std::string read_prompt(const std::string& arg) {
  if (arg != "-") return arg;
  return trimmed(
      std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()));
}

void print_details(const client::KeyGrant& grant, const client::ChatResult& r) {
  std::cerr << "server: " << grant.server_id << " " << grant.server_url << '\n'
            << "event_id: " << r.event_id << '\n'
            << "finish_reason: " << r.finish_reason << '\n';
  if (r.usage) {
    std::cerr << "usage: prompt_tokens=" << r.usage->prompt_tokens
              << " completion_tokens=" << r.usage->completion_tokens
              << " total_tokens=" << r.usage->total_tokens << '\n';
  }
}

int chat(const ChatOptions& o) {
  auto token = read_user_token(o.token_file);
  if (!token) return kExitFailed;
  // Read before the key is minted: waiting on stdin must not eat into the key's lifetime.
  const std::string prompt = read_prompt(o.prompt);
  auto c = client::Client::create({.ca_file = o.ca_file});
  if (!c) return fail_client(c.error());
  client::KeyRequest want{.model = o.model};
  if (o.max_tokens > 0) want.max_tokens = o.max_tokens;
  auto grant = c->request_key(o.backend, *token, want);
  if (!grant) return fail_client(grant.error());

  client::ChatRequest request{.model = o.model, .messages = {{"user", prompt}}};
  if (o.max_tokens > 0) request.max_tokens = o.max_tokens;
  request.stream = o.stream;
  bool printed = false;
  auto answer = c->chat(*grant, request, [&printed](std::string_view delta) {
    std::cout << delta << std::flush;
    printed = true;
  });
  if (!answer) {
    if (printed) std::cout << std::endl;  // end the partial answer's line before the error
    return fail_client(answer.error());
  }
  if (!o.stream) std::cout << answer->content;
  std::cout << std::endl;
  if (o.verbose) print_details(*grant, *answer);
  return kExitOk;
}

}  // namespace

void add_chat_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ChatOptions>();
  auto* cmd = app.add_subcommand(
      "chat", "Ask an LLM server as an edge client: get a key from the backend, then chat");
  cmd->add_option("--backend", o->backend,
                  "the business backend's base URL, http(s)://host[:port][/path]")
      ->required();
  cmd->add_option("--token-file", o->token_file,
                  "file holding your user token for the backend (surrounding whitespace is "
                  "ignored)")
      ->required();
  cmd->add_option("--model", o->model, "the model to ask for")->required();
  cmd->add_option("--max-tokens", o->max_tokens,
                  "cap on the answer's tokens (asked of the backend and of the server; default: "
                  "your plan's cap)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--stream", o->stream, "print the answer as it arrives");
  cmd->add_flag("--verbose", o->verbose,
                "after the answer, print the server, event id, finish reason and token usage "
                "to stderr");
  cmd->add_option("--ca-file", o->ca_file,
                  "PEM file of CA certificates for https (default: the system's)");
  cmd->add_option("PROMPT", o->prompt, "the question (one user message); - reads it from stdin")
      ->required();
  cmd->callback([&exit_code, o] { exit_code = chat(*o); });
  cmd->footer(
      "Steps: POST <backend>/v1/keys with `Authorization: Bearer <user token>` returns a\n"
      "short-lived dynamic key and the server's URL; the prompt then goes to\n"
      "<server>/v1/chat/completions with that key. The answer goes to stdout, ending with a\n"
      "newline. Exit 0 on success; 1 when the backend or the server refuses or the call fails,\n"
      "with one line `error: <code>: <message>` on stderr (codes such as uses_exhausted,\n"
      "quota_exhausted, connect_failed, timeout, tls_failed, response_malformed); 2 on a usage\n"
      "error. See docs/client.md.");
}

}  // namespace dynaseal::cli
