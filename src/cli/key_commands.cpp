// dynaseal keygen | key mint | key inspect | key verify (DESIGN §11).

#include <chrono>
#include <cstdint>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/serialize.hpp>

#include "cli/app.hpp"
#include "core/dynamic_key.hpp"
#include "core/jwk.hpp"
#include "store/key_file.hpp"

namespace dynaseal::cli {
namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// TOKEN "-" means stdin; surrounding whitespace (a trailing newline from echo) is dropped.
std::string read_token(const std::string& arg) {
  std::string token = arg;
  if (arg == "-") {
    token.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  const auto first = token.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  token.erase(token.find_last_not_of(" \t\r\n") + 1);
  return token.substr(first);
}

struct MintOptions {
  std::string key_file, iss, sub, jti, ctx;
  std::vector<std::string> aud, models, endpoints;
  std::int64_t max_tokens = 0, uses = 1, budget = 0, ttl = 300, count = 1;
  bool no_stream = false;
};

int keygen(const std::string& out) {
  const SigningKey key = SigningKey::generate();
  if (!store::write_private_key_file(out, key)) {
    return fail(Error::io_error, "cannot create " + out + " (it must not exist yet)");
  }
  std::cout << public_jwk_json(key.public_key()) << '\n';
  return kExitOk;
}

int mint(const MintOptions& o) {
  auto key = store::read_private_key_file(o.key_file);
  if (!key) return fail(key.error(), "cannot use key file " + o.key_file);
  Claims c;
  c.iss = o.iss;
  c.aud = o.aud;
  c.sub = o.sub;
  c.jti = o.jti.empty() ? random_jti() : o.jti;
  c.iat = unix_now();
  c.exp = c.iat + o.ttl;
  c.dks.models = o.models;
  c.dks.max_tokens = o.max_tokens;
  c.dks.uses = o.uses;
  if (o.budget > 0) c.dks.budget = o.budget;
  c.dks.stream = !o.no_stream;
  if (!o.endpoints.empty()) {
    c.dks.endpoints = 0;
    for (const auto& name : o.endpoints) {
      c.dks.endpoints |= static_cast<std::uint8_t>(*parse_endpoint(name));
    }
  }
  if (!o.ctx.empty()) c.ctx = o.ctx;
  // --count N: N keys, one per line, each with its own fresh jti (for load tests).
  std::string out;
  for (std::int64_t i = 0; i < o.count; ++i) {
    if (i > 0) c.jti = random_jti();
    auto token = mint_key(c, *key);
    if (!token) return fail(token.error());
    out += *token;
    out += '\n';
  }
  std::cout << out << std::flush;
  return kExitOk;
}

int inspect(const std::string& arg) {
  auto decoded = decode_key_unverified(read_token(arg));
  if (!decoded) return fail(decoded.error());
  boost::json::object out;
  out["verified"] = false;
  out["header"] = std::move(decoded->header);
  out["claims"] = std::move(decoded->payload);
  std::cout << boost::json::serialize(out) << '\n';
  return kExitOk;
}

int verify(const std::string& jwks_file, const std::string& iss, const std::string& aud,
           const VerifyPolicy& policy, const std::string& arg) {
  auto keys = store::read_jwks_file(jwks_file);
  if (!keys) return fail(keys.error(), "cannot use JWK/JWKS file " + jwks_file);
  IssuerRegistry registry;
  registry.set_issuer(iss, std::move(*keys));
  auto verified = verify_key(read_token(arg), registry, aud, unix_now(), policy);
  if (!verified) return fail(verified.error());
  std::cout << claims_json(verified->claims) << '\n';
  return kExitOk;
}

}  // namespace

void add_key_commands(CLI::App& app, int& exit_code) {
  auto* gen =
      app.add_subcommand("keygen", "Create an Ed25519 signing key (private JWK, mode 0600)");
  auto out = std::make_shared<std::string>();
  gen->add_option("--out", *out, "private JWK file to create (must not exist)")->required();
  gen->callback([&exit_code, out] { exit_code = keygen(*out); });
  gen->footer("Prints the public JWK (with its RFC 7638 kid) on stdout.");

  auto* key = app.add_subcommand("key", "Mint, inspect and verify dynamic keys");
  key->require_subcommand(1);

  auto m = std::make_shared<MintOptions>();
  auto* mint_cmd = key->add_subcommand("mint", "Mint a dynamic key; prints it on one line");
  mint_cmd->add_option("--key", m->key_file, "issuer's private JWK file")->required();
  mint_cmd->add_option("--iss", m->iss, "issuer (backend) id")->required();
  mint_cmd->add_option("--aud", m->aud, "server id (repeatable)")->required();
  mint_cmd->add_option("--sub", m->sub, "end user or device (opaque, <= 256 bytes)")->required();
  mint_cmd->add_option("--model", m->models, "allowed model (repeatable)")->required();
  mint_cmd->add_option("--max-tokens", m->max_tokens, "cap on completion tokens per request")
      ->required()
      ->check(CLI::PositiveNumber);
  mint_cmd->add_option("--uses", m->uses, "requests the key may serve")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  mint_cmd->add_option("--budget", m->budget, "cap on total tokens across all uses")
      ->check(CLI::PositiveNumber);
  mint_cmd->add_option("--ttl", m->ttl, "lifetime in seconds")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{366} * 24 * 3600));
  mint_cmd->add_flag("--no-stream", m->no_stream, "forbid streaming");
  mint_cmd->add_option("--endpoint", m->endpoints, "allowed endpoint (repeatable; default both)")
      ->check(CLI::IsMember({"chat.completions", "completions"}));
  mint_cmd->add_option("--ctx", m->ctx, "opaque context echoed in callbacks (<= 1 KiB)");
  mint_cmd->add_option("--jti", m->jti, "event id (default: 128 random bits)");
  mint_cmd->add_option("--count", m->count, "mint N keys, one per line, each with a fresh jti")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{10'000'000}));
  mint_cmd->callback([&exit_code, m] { exit_code = mint(*m); });

  auto token = std::make_shared<std::string>();
  auto* inspect_cmd =
      key->add_subcommand("inspect", "Print a key's header and claims as JSON, unverified");
  inspect_cmd->add_option("TOKEN", *token, "the dynamic key, or - for stdin")->required();
  inspect_cmd->callback([&exit_code, token] { exit_code = inspect(*token); });

  struct VerifyArgs {
    std::string jwks, iss, aud, token;
    VerifyPolicy policy;
  };
  auto v = std::make_shared<VerifyArgs>();
  auto* verify_cmd = key->add_subcommand("verify", "Verify a key; prints its claims as JSON");
  verify_cmd->add_option("--jwks", v->jwks, "issuer's public JWK or JWKS file")->required();
  verify_cmd->add_option("--iss", v->iss, "expected issuer id")->required();
  verify_cmd->add_option("--aud", v->aud, "this server's id")->required();
  verify_cmd->add_option("--max-ttl", v->policy.max_ttl, "largest exp - iat accepted (s)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  verify_cmd->add_option("--leeway", v->policy.leeway, "clock skew tolerated (s)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{3600}));
  verify_cmd->add_option("TOKEN", v->token, "the dynamic key, or - for stdin")->required();
  verify_cmd->callback(
      [&exit_code, v] { exit_code = verify(v->jwks, v->iss, v->aud, v->policy, v->token); });
  verify_cmd->footer("Exit 0 with the claims, or exit 1 with `error: <code>: <message>`.");
}

}  // namespace dynaseal::cli
