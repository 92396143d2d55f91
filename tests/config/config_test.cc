// Strict typed configuration: parsing, errors naming the full dotted key,
// overrides, printing and round trips.

#include "tokenrl/config/config.h"

#include <gtest/gtest.h>

#include "tokenrl/env/env_config.h"
#include "tokenrl/env/vector_env.h"

namespace tokenrl::config {
namespace {

struct Experiment {
  env::EnvConfig env;
  env::VectorEnvConfig vector_env;
  std::vector<std::string> games{"breakout"};
  std::vector<double> taus{0.5, 1.0};
  template <typename V>
  void VisitFields(V& v) {
    v.Field("env", env, "Environment");
    v.Field("vector_env", vector_env, "Vectorized stepping");
    v.Field("games", games, "Games");
    v.Field("taus", taus, "Thresholds");
  }
};

StatusOr<Experiment> Parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  toml::table table;
  try {
    table = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(std::string(e.description()));
  }
  for (const auto& o : overrides) TOKENRL_RETURN_IF_ERROR(ApplyOverride(table, o));
  Experiment e;
  TOKENRL_RETURN_IF_ERROR(ParseTable(table, e));
  return e;
}

TEST(ConfigTest, DefaultsApplyWhenKeysAreAbsent) {
  auto e = Parse("");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->env.name, "minatar/breakout");
  EXPECT_DOUBLE_EQ(e->env.minatar.sticky_action_prob, 0.1);
  EXPECT_TRUE(e->env.minatar.difficulty_ramping);
}

TEST(ConfigTest, ParsesNestedTablesArraysAndEnums) {
  auto e = Parse(R"(
games = ["asterix", "seaquest"]
taus = [0, 0.25]
[env]
name = "minatar/seaquest"
minatar.sticky_action_prob = 0.0
minatar.action_set = "minimal"
[vector_env]
members = 3
obs_dtype = "float32"
)");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->env.name, "minatar/seaquest");
  EXPECT_EQ(e->env.minatar.sticky_action_prob, 0.0);
  EXPECT_EQ(e->env.minatar.action_set, env::ActionSet::kMinimal);
  EXPECT_EQ(e->vector_env.members, 3);
  EXPECT_EQ(e->vector_env.obs_dtype, env::ObsDtype::kFloat32);
  EXPECT_EQ(e->games, (std::vector<std::string>{"asterix", "seaquest"}));
  EXPECT_EQ(e->taus, (std::vector<double>{0.0, 0.25}));
}

TEST(ConfigTest, UnknownKeyNamesFullPathAndAllowedKeys) {
  auto e = Parse("[env.minatar]\nsticky_prob = 0.2\n");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("env.minatar.sticky_prob: unknown key"), std::string::npos)
      << e.status().message();
  EXPECT_NE(e.status().message().find("sticky_action_prob"), std::string::npos);
}

TEST(ConfigTest, WrongTypeNamesKeyAndExpectedType) {
  auto e = Parse("[vector_env]\nmembers = \"four\"\n");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("vector_env.members: expected an integer"), std::string::npos)
      << e.status().message();
}

TEST(ConfigTest, OutOfRangeNamesKeyAndRange) {
  auto e = Parse("[env.minatar]\nsticky_action_prob = 1.5\n");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("env.minatar.sticky_action_prob: value 1.5 is out of range; allowed: in [0, 1]"),
            std::string::npos)
      << e.status().message();
}

TEST(ConfigTest, UnknownEnumValueListsAllowedValues) {
  auto e = Parse("[vector_env]\nobs_dtype = \"int16\"\n");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("vector_env.obs_dtype: unknown value \"int16\"; allowed values: uint8, float32"),
            std::string::npos)
      << e.status().message();
}

TEST(ConfigTest, ArrayElementTypeErrorsNameTheIndex) {
  auto e = Parse("games = [\"a\", 3]\n");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("games[1]: expected a string"), std::string::npos) << e.status().message();
}

TEST(ConfigTest, ValidateRunsCrossFieldRules) {
  auto e = Parse("[vector_env]\nmembers = 4096\nenvs_per_member = 4096\n");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("vector_env: members * envs_per_member"), std::string::npos)
      << e.status().message();
}

TEST(ConfigTest, OverridesWinAndAcceptBareStrings) {
  auto e = Parse("[env]\nname = \"minatar/asterix\"\n",
                 {"env.name=minatar/freeway", "env.minatar.sticky_action_prob=0", "vector_env.members=2",
                  "games=[\"x\", \"y\"]"});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->env.name, "minatar/freeway");
  EXPECT_EQ(e->env.minatar.sticky_action_prob, 0.0);
  EXPECT_EQ(e->vector_env.members, 2);
  EXPECT_EQ(e->games, (std::vector<std::string>{"x", "y"}));
}

TEST(ConfigTest, OverrideErrors) {
  toml::table t;
  EXPECT_FALSE(ApplyOverride(t, "no_equals_sign").ok());
  EXPECT_FALSE(ApplyOverride(t, "=3").ok());
  EXPECT_FALSE(ApplyOverride(t, "a..b=3").ok());
  ASSERT_TRUE(ApplyOverride(t, "a=3").ok());
  auto st = ApplyOverride(t, "a.b=3");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("a is a value, not a table"), std::string::npos);
  // Unknown keys introduced by --set are caught by the strict parse.
  auto e = Parse("", {"env.minatar.typo=1"});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("env.minatar.typo: unknown key"), std::string::npos);
}

TEST(ConfigTest, PrintedTomlRoundTripsAndCarriesHelp) {
  Experiment original;
  original.env.name = "minatar/space_invaders";
  original.env.minatar.sticky_action_prob = 0.25;
  original.vector_env.obs_dtype = env::ObsDtype::kFloat32;
  original.taus = {0.1, 2.0};
  const std::string text = ToToml(original);
  EXPECT_NE(text.find("# Probability that the previous executed action repeats"), std::string::npos) << text;
  EXPECT_NE(text.find("[env.minatar]"), std::string::npos) << text;
  auto parsed = Parse(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString() << "\n" << text;
  EXPECT_EQ(ToToml(*parsed), text);
  EXPECT_EQ(parsed->env.minatar.sticky_action_prob, 0.25);
  EXPECT_EQ(parsed->vector_env.obs_dtype, env::ObsDtype::kFloat32);
}

TEST(ConfigTest, LoadReportsMissingFilesAndSyntaxErrors) {
  auto missing = Load<Experiment>({"/nonexistent/x.toml"}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  const std::string path = ::testing::TempDir() + "/bad.toml";
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("[env\nname = 3\n", f);
  std::fclose(f);
  auto bad = Load<Experiment>({path}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("TOML syntax error"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace tokenrl::config
