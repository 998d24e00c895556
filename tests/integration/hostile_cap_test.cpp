// The cap and the budget against every engine flavor the README documents (issue 15), as a
// hostile client would try them: each engine's own length knobs, streamed and not, many at once.
// The stand-in engine plays each flavor (`dynaseal engine --flavor`), honouring that engine's
// knobs, so a server that forwarded them would let a 16-token key generate thousands of tokens.
// With the server in front, every answer is refused (4xx) or within the cap, and the tokens
// reported for a budgeted key never exceed its budget.

#include <latch>
#include <mutex>
#include <thread>

#include <boost/json.hpp>

#include "harness.hpp"

namespace dynaseal::integration {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr std::int64_t kCap = 16;

// The knobs engines honour beyond max_tokens, and the standard ones at their limits.
const std::vector<std::string> kAttacks = {
    "",
    R"(,"max_tokens":2000)",
    R"(,"max_completion_tokens":2000)",
    R"(,"n_predict":2000)",
    R"(,"n_predict":-1)",
    R"(,"max_new_tokens":2000)",
    R"(,"options":{"num_predict":2000})",
    R"(,"min_tokens":500,"max_tokens":16)",
    R"(,"ignore_eos":true)",
    R"(,"n":4)",
    R"(,"best_of":4)",
    R"(,"max_tokens":16,"max_completion_tokens":16)",
};

std::string attack_body(const std::string& attack, bool stream) {
  std::string body = R"({"model":"demo","messages":[{"role":"user","content":"tell me a story"}])";
  if (stream) body += R"(,"stream":true,"stream_options":{"include_usage":true})";
  return body + attack + "}";
}

// Completion tokens of an answer: the usage the client received (streams: the usage chunk).
std::optional<std::int64_t> completion_of(const HttpResponse& r, bool stream) {
  if (!stream) return r.json().at("usage").at("completion_tokens").as_int64();
  for (const std::string& data : sse_data(r.body)) {
    if (data == "[DONE]") continue;
    const json::value chunk = json::parse(data);
    const json::value* usage = chunk.as_object().if_contains("usage");
    if (usage != nullptr && usage->is_object()) {
      return usage->at("completion_tokens").as_int64();
    }
  }
  return std::nullopt;
}

struct Flavor {
  std::string engine;  // dynaseal engine --flavor
  std::string server;  // the upstream's `engine` setting
};

void PrintTo(const Flavor& f, std::ostream* os) { *os << f.engine; }

class HostileCap : public IntegrationTest, public ::testing::WithParamInterface<Flavor> {
 protected:
  void SetUp() override {
    engine_options.flavor = GetParam().engine;
    server_options.upstream_toml =
        "prompt_overhead_tokens = 0\nengine = \"" + GetParam().server + "\"\n";
    start();
  }
};

// Every attack, streamed and not, from 24 clients at once: refused by a stable 4xx code, or
// answered within the cap.
TEST_P(HostileCap, NoKnobTakesAnEnginePastTheCap) {
  Claims c = acme.claims();
  c.dks.max_tokens = kCap;
  c.dks.uses = 1000;
  const std::string key = acme.mint(c);
  const int n = 24;
  std::vector<HttpResponse> responses(n);
  std::latch ready(n);
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i) {
    clients.emplace_back([&, i] {
      const bool stream = i % 2 == 1;
      const std::string body = attack_body(kAttacks[(i / 2) % kAttacks.size()], stream);
      ready.arrive_and_wait();
      responses[i] = http_post(port(), "/v1/chat/completions", body, key);
    });
  }
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < n; ++i) {
    const HttpResponse& r = responses[i];
    const std::string& attack = kAttacks[(i / 2) % kAttacks.size()];
    if (r.status != 200) {
      EXPECT_TRUE(r.status == 400 || r.status == 403) << attack << " " << r.body;
      EXPECT_TRUE(r.error_code() == "member_not_allowed" || r.error_code() == "n_not_allowed" ||
                  r.error_code() == "max_tokens_exceeded")
          << attack << " " << r.body;
      continue;
    }
    const auto completion = completion_of(r, i % 2 == 1);
    ASSERT_TRUE(completion.has_value()) << attack << " " << r.body;
    EXPECT_LE(*completion, kCap) << GetParam().engine << attack;
  }
  // Nothing the server recorded went past the cap either.
  EXPECT_EQ(metric(server->metrics(), R"(dynaseal_usage_records_total{status="over_cap"})"), 0);
}

// A budgeted key hit by 30 concurrent long prompts: everything the engine reported, prompts
// included, stays within dks.budget.
TEST_P(HostileCap, ConcurrentLongPromptsStayWithinTheBudget) {
  Claims c = acme.claims();
  c.dks.max_tokens = kCap;
  c.dks.uses = 1000;
  const std::int64_t budget = 4000;
  c.dks.budget = budget;
  const std::string key = acme.mint(c);
  std::string prompt;
  for (int i = 0; i < 60; ++i) prompt += "many words in a long prompt ";
  const std::string body = chat_body("demo", prompt, kCap);
  const int n = 30;
  std::vector<HttpResponse> responses(n);
  std::latch ready(n);
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i) {
    clients.emplace_back([&, i] {
      ready.arrive_and_wait();
      responses[i] = http_post(port(), "/v1/chat/completions", body, key);
    });
  }
  for (std::thread& t : clients) t.join();
  std::int64_t reported = 0, served = 0;
  for (const HttpResponse& r : responses) {
    if (r.status == 200) {
      ++served;
      reported += r.json().at("usage").at("total_tokens").as_int64();
    } else {
      EXPECT_EQ(r.error_code(), "budget_exhausted") << r.body;
    }
  }
  EXPECT_GE(served, 1);
  EXPECT_LE(reported, budget);
}

INSTANTIATE_TEST_SUITE_P(Engines, HostileCap,
                         ::testing::Values(Flavor{"generic", "generic"}, Flavor{"openai", "openai"},
                                           Flavor{"vllm", "vllm"}, Flavor{"llamacpp", "llamacpp"},
                                           Flavor{"ollama", "ollama"}, Flavor{"tgi", "tgi"}),
                         [](const auto& info) { return info.param.engine; });

using RecklessEngine = IntegrationTest;

// An engine that ignores every cap: streams are cut at the cap and end cleanly for the client;
// whole answers above it are delivered and recorded as over_cap, never as ok.
TEST_F(RecklessEngine, IsCutOnStreamsAndRecordedAsOverCap) {
  engine_options.flavor = "reckless";
  start();
  Claims c = acme.claims();
  c.dks.max_tokens = 4;
  c.dks.uses = 10;
  const std::string key = acme.mint(c);
  HttpResponse streamed = chat(key, chat_body("demo", "hello there", 4, true));
  ASSERT_EQ(streamed.status, 200u) << streamed.body;
  const auto events = sse_data(streamed.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_LE(events.size(), 4u + 2u + 1u) << streamed.body;  // cap + role + finish, then [DONE]
  HttpResponse whole = chat(key, chat_body("demo", "hello there", 4));
  ASSERT_EQ(whole.status, 200u);
  EXPECT_GT(whole.json().at("usage").at("completion_tokens").as_int64(), 4);
  EXPECT_TRUE(eventually(
      [&] {
        return metric(server->metrics(), R"(dynaseal_usage_records_total{status="over_cap"})") == 2;
      },
      scaled(3s)));
  EXPECT_EQ(metric(server->metrics(), R"(dynaseal_usage_records_total{status="ok"})"), 0);
}

}  // namespace
}  // namespace dynaseal::integration
