// The expert-utilization presets (configs/sweeps/fig11_20_*, fig19_*) and the
// [diagnostics] / [interventions] config sections: every variant's base,
// network preset and overrides load into a valid TrainConfig.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenrl/config/config.h"
#include "tokenrl/runner/train_config.h"

namespace tokenrl::runner {
namespace {

std::vector<std::string> Strings(const toml::node* node) {
  std::vector<std::string> out;
  if (const toml::array* a = node ? node->as_array() : nullptr) {
    for (const auto& v : *a)
      if (auto s = v.value<std::string>()) out.push_back(*s);
  }
  return out;
}

TEST(ExpertInterventionPresetsTest, EveryVariantLoads) {
  const std::string dir = std::string(TOKENRL_SOURCE_DIR) + "/configs/sweeps/";
  for (const char* name : {"fig11_20_minatar_rainbow", "fig11_20_minatar_der", "fig19_minatar_rainbow"}) {
    auto table = config::ReadTomlFiles({dir + name + ".toml"});
    ASSERT_TRUE(table.ok()) << name << ": " << table.status().ToString();
    std::vector<std::string> base;
    for (const auto& b : Strings(table->get("base"))) base.push_back(dir + b);
    const std::vector<std::string> common = Strings(table->get("set"));
    const toml::table* variants = table->get_as<toml::table>("variants");
    ASSERT_NE(variants, nullptr) << name;
    int with_interventions = 0;
    for (const auto& [key, node] : *variants) {
      const toml::table& v = *node.as_table();
      std::vector<std::string> files = base;
      for (const auto& c : Strings(v.get("configs"))) files.push_back(dir + c);
      std::vector<std::string> sets = common;
      for (const auto& s : Strings(v.get("set"))) sets.push_back(s);
      auto c = config::Load<TrainConfig>(files, sets);
      ASSERT_TRUE(c.ok()) << name << " / " << key.str() << ": " << c.status().ToString();
      EXPECT_GT(c->diagnostics.every_env_steps, 0);
      EXPECT_EQ(c->network.mixer.num_experts, 4);
      with_interventions += c->interventions.type != InterventionType::kNone ? 1 : 0;
    }
    EXPECT_GE(with_interventions, 2) << name;
  }
}

TEST(ExpertInterventionPresetsTest, ConfigSectionsValidate) {
  auto bad = config::Load<TrainConfig>({}, {"interventions.type=prune"});
  EXPECT_FALSE(bad.ok());  // Pruning needs num_experts >= 1.
  auto empty_taus = config::Load<TrainConfig>({}, {"diagnostics.taus=[]"});
  EXPECT_FALSE(empty_taus.ok());
  auto good = config::Load<TrainConfig>(
      {}, {"interventions.type=shrink_perturb", "interventions.alpha=0.8", "diagnostics.taus=[0.0, 0.1]"});
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->interventions.alpha, 0.8);
  EXPECT_EQ(good->diagnostics.taus, (std::vector<double>{0.0, 0.1}));
}

}  // namespace
}  // namespace tokenrl::runner
