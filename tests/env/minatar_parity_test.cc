// Oracle alignment: replays every trajectory recorded from the original Python
// MinAtar (tests/data/minatar_reference/, or $TOKENRL_MINATAR_REFERENCE) and
// compares, on every record, the executed action, reward, terminal flag, ramp
// index, observation bits and the number of 32-bit random draws consumed.
// One test per fixture file; the run ends with a one-line summary
//   parity: N files, M steps, K mismatches
// where K counts step and reset records that did not match or could not be
// checked because an earlier record of the same seed diverged.

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "testing/shared_data.h"
#include "tokenrl/env/minatar/minatar_env.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::env::minatar {
namespace {

struct ParityTotals {
  int files = 0;
  int64_t steps = 0;
  int64_t mismatches = 0;
};
ParityTotals g_totals;

class ParitySummary : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_totals.files > 0) {
      std::printf("parity: %d files, %lld steps, %lld mismatches\n", g_totals.files,
                  static_cast<long long>(g_totals.steps), static_cast<long long>(g_totals.mismatches));
    }
  }
};
const auto* const kSummary = ::testing::AddGlobalTestEnvironment(new ParitySummary);

std::vector<std::string> FixtureFiles() {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(testing::MinatarReferenceDir(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".jsonl.gz")) files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The fixture encoding: bool[10][10][C] in C order (HWC), packed MSB-first, hex.
std::string EncodeObservation(const std::vector<uint8_t>& chw, int channels) {
  const int bits = kRows * kCols * channels;
  std::vector<uint8_t> packed(static_cast<size_t>((bits + 7) / 8), 0);
  for (int row = 0; row < kRows; ++row)
    for (int col = 0; col < kCols; ++col)
      for (int ch = 0; ch < channels; ++ch) {
        if (!chw[static_cast<size_t>(CellIndex(ch, row, col))]) continue;
        const int i = (row * kCols + col) * channels + ch;
        packed[static_cast<size_t>(i / 8)] |= static_cast<uint8_t>(1u << (7 - i % 8));
      }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t b : packed) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

class GzLines {
 public:
  explicit GzLines(const std::string& path) : file_(gzopen(path.c_str(), "rb")) {}
  ~GzLines() {
    if (file_ != nullptr) gzclose(file_);
  }
  bool ok() const { return file_ != nullptr; }
  bool Next(std::string& line) {
    line.clear();
    char buffer[8192];
    while (gzgets(file_, buffer, sizeof(buffer)) != nullptr) {
      line += buffer;
      if (!line.empty() && line.back() == '\n') {
        line.pop_back();
        return true;
      }
    }
    return !line.empty();
  }

 private:
  gzFile file_;
};

class MinatarParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MinatarParityTest, MatchesOriginalMinatar) {
  const std::string path = testing::MinatarReferenceDir() + "/" + GetParam();
  GzLines lines(path);
  ASSERT_TRUE(lines.ok()) << "cannot open " << path;
  std::string line;
  ASSERT_TRUE(lines.Next(line)) << path << " is empty";
  const auto meta = nlohmann::json::parse(line);
  ASSERT_EQ(meta.value("type", ""), "meta") << "first line of " << path << " is not a meta record";

  EnvConfig config;
  config.name = "minatar/" + meta.at("game").get<std::string>();
  config.minatar.sticky_action_prob = meta.at("sticky_action_prob").get<double>();
  config.minatar.difficulty_ramping = meta.at("difficulty_ramping").get<bool>();
  config.minatar.action_set = ActionSet::kFull;  // The files pass full ids (`a`).
  auto made = MakeEnvironment(config);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  std::unique_ptr<Environment> owned = std::move(made).value();
  auto* env = dynamic_cast<MinatarEnv*>(owned.get());
  ASSERT_NE(env, nullptr);
  const int channels = env->spec().observation_shape[0];
  ASSERT_EQ(channels, meta.at("n_channels").get<int>());
  std::vector<uint8_t> obs(static_cast<size_t>(env->spec().observation_size()));

  int64_t steps = 0, mismatches = 0;
  int shown = 0;
  int64_t current_seed = -1;
  bool seed_diverged = false;
  while (lines.Next(line)) {
    if (line.empty()) continue;
    const auto rec = nlohmann::json::parse(line);
    const int64_t seed = rec.at("seed").get<int64_t>();
    const std::string type = rec.at("type").get<std::string>();
    if (type == "step") ++steps;
    if (seed != current_seed) {
      current_seed = seed;
      seed_diverged = false;
    }
    if (seed_diverged) {  // Unverifiable after a divergence: count it.
      ++mismatches;
      continue;
    }
    std::string what;
    if (type == "reset") {
      if (rec.at("ep").get<int>() == 0) {
        env->Reset(static_cast<uint32_t>(seed));
      } else {
        env->Reset();
      }
    } else {
      const int action = rec.at("a").get<int>();
      auto step = env->Step(action);
      if (!step.ok()) {
        what = "Step failed: " + step.status().ToString();
      } else {
        if (env->last_executed_action() != rec.at("a_exec").get<int>())
          what += fmt::format(" a_exec {} != {}", env->last_executed_action(), rec.at("a_exec").get<int>());
        if (step->reward != rec.at("r").get<float>()) what += fmt::format(" r {} != {}", step->reward, rec.at("r").get<float>());
        if (step->terminated != rec.at("term").get<bool>())
          what += fmt::format(" term {} != {}", step->terminated, rec.at("term").get<bool>());
        const int expected_ramp = rec.at("ramp").is_null() ? -1 : rec.at("ramp").get<int>();
        if (env->ramp_index() != expected_ramp) what += fmt::format(" ramp {} != {}", env->ramp_index(), expected_ramp);
      }
    }
    if (env->rng_draws() != rec.at("nd").get<uint64_t>())
      what += fmt::format(" nd {} != {}", env->rng_draws(), rec.at("nd").get<uint64_t>());
    env->WriteObservation(std::span<uint8_t>(obs));
    const std::string expected_obs = rec.at("obs").get<std::string>();
    if (EncodeObservation(obs, channels) != expected_obs) what += " obs differs";
    if (!what.empty()) {
      ++mismatches;
      seed_diverged = true;
      if (shown++ < 3) {
        ADD_FAILURE() << GetParam() << " seed " << seed << " t " << rec.at("t") << " " << type << ":" << what
                      << "\nours:\n"
                      << env->ToString();
      }
    }
  }
  g_totals.files += 1;
  g_totals.steps += steps;
  g_totals.mismatches += mismatches;
  std::printf("parity %s: %lld steps, %lld mismatches\n", GetParam().c_str(), static_cast<long long>(steps),
              static_cast<long long>(mismatches));
  EXPECT_GT(steps, 0) << path << " has no step records";
  EXPECT_EQ(mismatches, 0);
}

std::string FixtureTestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param.substr(0, info.param.find('.'));
  std::replace_if(name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MinatarParityTest, ::testing::ValuesIn(FixtureFiles()), FixtureTestName);

TEST(MinatarParityFixturesTest, DirectoryHoldsFixtures) {
  EXPECT_FALSE(FixtureFiles().empty()) << "no *.jsonl.gz fixtures in " << testing::MinatarReferenceDir()
                                       << " (set TOKENRL_MINATAR_REFERENCE)";
}

}  // namespace
}  // namespace tokenrl::env::minatar
