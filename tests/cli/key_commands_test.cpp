// The CLI contract of DESIGN §11, driven through the real executable: outputs and exit codes.

#include <sys/stat.h>
#include <sys/wait.h>

#include <set>
#include <sstream>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "core/jwk.hpp"
#include "test_support.hpp"

namespace dynaseal {
namespace {

struct Outcome {
  int exit_code;
  std::string out;
  std::string err;
  std::string first_err_line() const { return err.substr(0, err.find('\n')); }
};

class KeyCommands : public ::testing::Test {
 protected:
  std::string path(const char* name) const { return (dir_ / name).string(); }

  // Runs dynaseal with `args` (each single-quoted for the shell), feeding `input` on stdin.
  Outcome run(const std::vector<std::string>& args, const std::string& input = "") const {
    std::string cmd = "'" DYNASEAL_BINARY "'";
    for (const auto& a : args) cmd += " '" + a + "'";
    std::ofstream(dir_ / "stdin") << input;
    cmd += " <'" + path("stdin") + "' >'" + path("stdout") + "' 2>'" + path("stderr") + "'";
    const int status = std::system(cmd.c_str());
    return {WEXITSTATUS(status), testing::read_file(dir_ / "stdout"),
            testing::read_file(dir_ / "stderr")};
  }

  // keygen into `name`; returns the public JWK file's path.
  std::string keygen(const char* name) {
    Outcome r = run({"keygen", "--out", path(name)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string pub = path(name) + ".pub";
    std::ofstream(pub) << r.out;
    return pub;
  }

  Outcome mint(const char* key, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"key",     "mint",  "--key",        path(key), "--iss",
                                     "acme",    "--aud", "llm-1",        "--sub",   "user-42",
                                     "--model", "demo",  "--max-tokens", "100"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  }

  static std::string line(const std::string& s) { return s.substr(0, s.find('\n')); }

  testing::TempDir dir_;
};

TEST_F(KeyCommands, KeygenWritesA0600KeyAndPrintsItsPublicJwk) {
  Outcome r = run({"keygen", "--out", path("k.jwk")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(::stat(path("k.jwk").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto keys = parse_jwks(r.out);
  ASSERT_TRUE(keys) << r.out;
  EXPECT_NE(r.out.find("\"kid\":\"" + keys->front().kid + "\""), std::string::npos);
  EXPECT_EQ(r.out.find("\"d\""), std::string::npos);
}

TEST_F(KeyCommands, KeygenRefusesToOverwrite) {
  keygen("k.jwk");
  Outcome r = run({"keygen", "--out", path("k.jwk")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.first_err_line().starts_with("error: io_error: ")) << r.err;
}

TEST_F(KeyCommands, MintPrintsOneLineThatVerifies) {
  const std::string pub = keygen("k.jwk");
  Outcome m = mint("k.jwk", {"--uses", "3", "--budget", "900", "--ttl", "120", "--ctx", "order-7"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  ASSERT_EQ(m.out.back(), '\n');
  const std::string token = line(m.out);
  EXPECT_EQ(token.size() + 1, m.out.size());

  Outcome v = run({"key", "verify", "--jwks", pub, "--iss", "acme", "--aud", "llm-1", token});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  auto claims = boost::json::parse(v.out).as_object();
  EXPECT_EQ(claims.at("sub").as_string(), "user-42");
  EXPECT_EQ(claims.at("exp").as_int64() - claims.at("iat").as_int64(), 120);
  EXPECT_EQ(claims.at("dks").at("uses").as_int64(), 3);
  EXPECT_EQ(claims.at("dks").at("budget").as_int64(), 900);
  EXPECT_EQ(claims.at("ctx").as_string(), "order-7");
}

TEST_F(KeyCommands, MintCountPrintsDistinctKeysOnePerLine) {
  const std::string pub = keygen("k.jwk");
  Outcome m = mint("k.jwk", {"--count", "5"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  std::set<std::string> jtis;
  std::istringstream lines(m.out);
  for (std::string token; std::getline(lines, token);) {
    Outcome v = run({"key", "verify", "--jwks", pub, "--iss", "acme", "--aud", "llm-1", token});
    ASSERT_EQ(v.exit_code, 0) << v.err;
    jtis.insert(std::string(boost::json::parse(v.out).at("jti").as_string()));
  }
  EXPECT_EQ(jtis.size(), 5u);
}

TEST_F(KeyCommands, VerifyReadsTheTokenFromStdin) {
  const std::string pub = keygen("k.jwk");
  Outcome m = mint("k.jwk");
  Outcome v = run({"key", "verify", "--jwks", pub, "--iss", "acme", "--aud", "llm-1", "-"}, m.out);
  EXPECT_EQ(v.exit_code, 0) << v.err;
}

TEST_F(KeyCommands, VerifyFailuresExitOneWithTheCode) {
  const std::string pub = keygen("k.jwk");
  const std::string token = line(mint("k.jwk").out);
  struct Case {
    std::vector<std::string> args;
    std::string code;
  };
  // One character of the signature changed, always to another (replacing its last two
  // characters by "BA" left a signature ending in "BA" unchanged: one run in 1,024 failed).
  std::string forged = token;
  const std::size_t at = token.rfind('.') + 10;
  forged[at] = forged[at] == 'A' ? 'B' : 'A';
  for (const Case& c : std::vector<Case>{
           {{"--aud", "llm-2", token}, "audience_mismatch"},
           {{"--aud", "llm-1", forged}, "signature_invalid"},
           {{"--aud", "llm-1", "not-a-token"}, "token_malformed"},
           {{"--aud", "llm-1", "--max-ttl", "60", token}, "ttl_too_long"},
       }) {
    std::vector<std::string> args = {"key", "verify", "--jwks", pub, "--iss", "acme"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Outcome v = run(args);
    EXPECT_EQ(v.exit_code, 1) << c.code;
    EXPECT_TRUE(v.first_err_line().starts_with("error: " + c.code + ": ")) << v.err;
    EXPECT_TRUE(v.out.empty());
  }
  Outcome wrong_iss =
      run({"key", "verify", "--jwks", pub, "--iss", "globex", "--aud", "llm-1", token});
  EXPECT_TRUE(wrong_iss.first_err_line().starts_with("error: issuer_unknown: ")) << wrong_iss.err;
}

TEST_F(KeyCommands, InspectPrintsHeaderAndClaimsMarkedUnverified) {
  keygen("k.jwk");
  const std::string token = line(mint("k.jwk").out);
  Outcome r = run({"key", "inspect", token});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = boost::json::parse(r.out).as_object();
  EXPECT_EQ(doc.at("verified").as_bool(), false);
  EXPECT_EQ(doc.at("header").at("typ").as_string(), "dk+jwt");
  EXPECT_EQ(doc.at("claims").at("iss").as_string(), "acme");
  Outcome bad = run({"key", "inspect", "x.y"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(bad.first_err_line().starts_with("error: token_malformed: ")) << bad.err;
}

TEST_F(KeyCommands, MintRefusesAnUnsafeKeyFile) {
  keygen("k.jwk");
  ::chmod(path("k.jwk").c_str(), 0644);
  Outcome r = mint("k.jwk");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.first_err_line().starts_with("error: key_file_unsafe: ")) << r.err;
}

TEST_F(KeyCommands, MintRefusesClaimsThatWouldNotVerify) {
  keygen("k.jwk");
  Outcome r = mint("k.jwk", {"--jti", "short"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.first_err_line().starts_with("error: claims_malformed: ")) << r.err;
}

TEST_F(KeyCommands, UsageErrorsExitTwo) {
  keygen("k.jwk");
  EXPECT_EQ(run({}).exit_code, 2);
  EXPECT_EQ(run({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(run({"key", "mint"}).exit_code, 2);
  EXPECT_EQ(mint("k.jwk", {"--max-tokens", "0"}).exit_code, 2);
  EXPECT_EQ(mint("k.jwk", {"--uses", "many"}).exit_code, 2);
  EXPECT_EQ(mint("k.jwk", {"--endpoint", "embeddings"}).exit_code, 2);
  EXPECT_EQ(run({"key", "verify", "--iss", "a", "--aud", "b", "t"}).exit_code, 2);
}

TEST_F(KeyCommands, EverySubcommandHasHelp) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"},
                                                                {"keygen", "--help"},
                                                                {"key", "--help"},
                                                                {"key", "mint", "--help"},
                                                                {"key", "inspect", "--help"},
                                                                {"key", "verify", "--help"}}) {
    Outcome r = run(args);
    EXPECT_EQ(r.exit_code, 0) << args.back();
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace dynaseal
