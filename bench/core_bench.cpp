// Core hot paths against their floor: verifying a dynamic key against a bare libsodium
// verify over the same bytes, rejecting garbage, rejecting a bad signature, minting, JCS.
// Prints the ratios the performance targets are stated in (issue: foundation, item 6).

#include <sodium.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/base64url.hpp"
#include "core/dynamic_key.hpp"
#include "core/jcs.hpp"

namespace dynaseal {
namespace {

constexpr std::int64_t kNow = 1700000100;

struct Fixture {
  SigningKey key = SigningKey::from_seed(Seed{});
  IssuerRegistry registry;
  Claims claims;
  std::string token;
  std::string bad_signature;

  Fixture() {
    registry.set_issuer("acme", {make_public_jwk(key.public_key())});
    claims.iss = "acme";
    claims.aud = {"llm-1"};
    claims.sub = "user-42";
    claims.jti = "AAAAAAAAAAAAAAAAAAAAAA";
    claims.iat = kNow - 100;
    claims.exp = kNow + 200;
    claims.dks.models = {"demo"};
    claims.dks.max_tokens = 256;
    claims.dks.budget = 10000;
    claims.ctx = "order-7";
    token = *mint_key(claims, key);
    // One bit of the signature flipped: the full verify runs and fails.
    const std::size_t dot = token.rfind('.');
    std::string sig = *base64url_decode(token.substr(dot + 1));
    sig[5] = static_cast<char>(sig[5] ^ 1);
    bad_signature = token.substr(0, dot + 1) + base64url_encode(sig);
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

void BM_SodiumVerifyBare(benchmark::State& state) {
  const Fixture& f = fixture();
  const std::size_t dot = f.token.rfind('.');
  const std::string input = f.token.substr(0, dot);
  const std::string sig = *base64url_decode(f.token.substr(dot + 1));
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                    reinterpret_cast<const unsigned char*>(input.data()),
                                    input.size(), f.key.public_key().data()));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SodiumVerifyBare);

void BM_VerifyValidKey(benchmark::State& state) {
  const Fixture& f = fixture();
  for (auto _ : state) {
    auto v = verify_key(f.token, f.registry, "llm-1", kNow);
    if (!v) state.SkipWithError("valid key rejected");
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyValidKey);

void BM_RejectBadSignature(benchmark::State& state) {
  const Fixture& f = fixture();
  for (auto _ : state) {
    auto v = verify_key(f.bad_signature, f.registry, "llm-1", kNow);
    if (v || v.error() != Error::signature_invalid) state.SkipWithError("bad signature passed");
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RejectBadSignature);

// A mix of what a flood of junk looks like: random bytes, wrong shapes, bad base64url,
// foreign algorithms, unknown issuers and kids, oversized tokens.
std::vector<std::string> garbage() {
  const Fixture& f = fixture();
  const std::size_t d1 = f.token.find('.');
  const std::string body = f.token.substr(d1);
  std::vector<std::string> g = {
      "",
      "Bearer",
      "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
      std::string(9000, 'A'),
      f.token + "." + f.token,
      "e30.e30.e30",
      "eyJhbGciOiJub25lIn0.eyJpc3MiOiJhY21lIn0.",
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + body,
      "eyJ=" + body,
      "!!!!" + body,
      base64url_encode(std::string_view(R"({"alg":"EdDSA","kid":"nope","typ":"dk+jwt"})")) + body,
  };
  Claims other = f.claims;
  other.iss = "globex";
  g.push_back(*mint_key(other, f.key));
  std::string random(600, '\0');
  randombytes_buf(random.data(), random.size());
  g.push_back(random);
  return g;
}

void BM_RejectGarbage(benchmark::State& state) {
  const std::vector<std::string> junk = garbage();
  const Fixture& f = fixture();
  std::size_t i = 0;
  for (auto _ : state) {
    auto v = verify_key(junk[i], f.registry, "llm-1", kNow);
    if (v) state.SkipWithError("garbage accepted");
    benchmark::DoNotOptimize(v);
    if (++i == junk.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RejectGarbage);

void BM_Mint(benchmark::State& state) {
  const Fixture& f = fixture();
  for (auto _ : state) benchmark::DoNotOptimize(mint_key(f.claims, f.key));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Mint);

void BM_Jcs(benchmark::State& state) {
  // An agent-envelope-sized document (about 600 bytes).
  const std::string doc =
      R"({"v":1,"agent":{"id":"did:key:z6Mk","name":"shopper","version":"2.1.0"},
    "principal":{"address":"gonka1l3e9pgs3mmwuwrh95fecme0s0qtn2880el49wm","chain":"gonka"},
    "scope":["chat.completions","completions"],"limits":{"max_tokens":1024,"budget":50000.5},
    "nonce":"8f14e45fceea167a5a36dedd4bea2543","iat":1700000000,"exp":1700000300,
    "request":{"method":"POST","uri":"/v1/chat/completions","body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    "meta":{"\u00e9t\u00e9":"\ud83d\ude00","z":null,"a":[1,2,3,1e21,1e-7]}})";
  for (auto _ : state) benchmark::DoNotOptimize(jcs_canonicalize(doc));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(doc.size()));
}
BENCHMARK(BM_Jcs);

// Console output as usual, then the targets as ratios of CPU time per operation.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.iterations == 0 || run.error_occurred) continue;
      seconds_per_op_[run.benchmark_name()] =
          run.cpu_accumulated_time / static_cast<double>(run.iterations);
    }
  }

  void print_targets() const {
    const double bare = get("BM_SodiumVerifyBare"), valid = get("BM_VerifyValidKey"),
                 bad = get("BM_RejectBadSignature"), junk = get("BM_RejectGarbage");
    std::printf("\nTargets (CPU time, one core):\n");
    if (bare > 0 && valid > 0) {
      std::printf("  verify valid key / bare libsodium verify rate: %.3f  (target >= 0.90)  %s\n",
                  bare / valid, bare / valid >= 0.9 ? "ok" : "MISSED");
    }
    if (junk > 0) {
      std::printf("  garbage rejected per second: %.2f M  (target >= 1 M)  %s\n", 1e-6 / junk,
                  1.0 / junk >= 1e6 ? "ok" : "MISSED");
    }
    if (bare > 0 && bad > 0) {
      std::printf("  bad signature cost / one bare verify: %.3f  (target <= 1 verify)  %s\n",
                  bad / bare, bad <= valid ? "ok" : "MISSED");
    }
  }

 private:
  double get(const std::string& name) const {
    auto it = seconds_per_op_.find(name);
    return it == seconds_per_op_.end() ? 0 : it->second;
  }
  std::map<std::string, double> seconds_per_op_;
};

}  // namespace
}  // namespace dynaseal

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  dynaseal::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_targets();
  benchmark::Shutdown();
  return 0;
}
