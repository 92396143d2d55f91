// Fuzz target: sweep files and speed tables. Input: the text of a sweep file
// (relative config paths resolve against configs/paper/ of the source tree,
// so the corpus can name the real presets). Contract: a Status or a valid
// sweep, never a crash or a hang; an accepted sweep expands to a plan whose
// JSON (OUT/sweep.plan.json) reads back to the same JSON; a small plan's cost
// estimate (which reads every job's config files) runs. The same text is also
// read as a speed table (configs/paper/speeds.toml's format).

#include <string>

#include "fuzz_support.h"
#include "tokenrl/runner/sweep.h"
#include "tokenrl/runner/sweep_speeds.h"

namespace {
using tokenrl::fuzz::Require;
namespace runner = tokenrl::runner;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto speeds = runner::ParseSpeedTable(text, "fuzz-speeds.toml");
  Require(speeds.ok() || !speeds.status().message().empty(), "a rejected speed table must say why");

  auto sweep = runner::ParseSweepConfig(text, TOKENRL_SOURCE_DIR "/configs/paper", "fuzz-sweep.toml");
  if (!sweep.ok()) {
    Require(!sweep.status().message().empty(), "a rejected sweep must say why");
    return 0;
  }
  auto plan = runner::ExpandSweep(*sweep);
  if (!plan.ok()) {
    Require(!plan.status().message().empty(), "a rejected expansion must say why");
    return 0;
  }
  const std::string json = runner::PlanToJson(*plan);
  auto reread = runner::PlanFromJson(json);
  Require(reread.ok(), "a plan's JSON does not read back: " + reread.status().ToString());
  Require(runner::PlanToJson(*reread) == json, "plan -> JSON -> plan -> JSON changed it");
  if (plan->jobs.size() <= 4) (void)runner::EstimateCost(*plan);
  if (speeds.ok()) (void)runner::EstimateCoreHours(*plan, *speeds);
  return 0;
}
