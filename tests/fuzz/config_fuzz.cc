// Fuzz target: the config layer. Input: TOML text in which every line that
// starts with "--set " is instead an override, applied in order after the
// TOML is read (as `tokenrl train --config F --set a.b=c` does). Contract:
// any input gives a Status or a valid TrainConfig, never a crash; an accepted
// config prints (config::ToToml) to TOML that parses back to the same text.

#include <string>
#include <vector>

#include <toml++/toml.h>

#include "fuzz_support.h"
#include "tokenrl/config/config.h"
#include "tokenrl/runner/train_config.h"

namespace {

using tokenrl::Status;
using tokenrl::fuzz::Require;
using tokenrl::runner::TrainConfig;

bool ParseToml(const std::string& text, toml::table& out) {
  try {
    out = toml::parse(text, std::string_view("fuzz.toml"));
    return true;
  } catch (const toml::parse_error&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::string toml_text;
  std::vector<std::string> overrides;
  for (size_t begin = 0; begin <= input.size();) {
    size_t end = input.find('\n', begin);
    if (end == std::string::npos) end = input.size();
    const std::string line = input.substr(begin, end - begin);
    if (line.rfind("--set ", 0) == 0) {
      overrides.push_back(line.substr(6));
    } else {
      toml_text += line + "\n";
    }
    begin = end + 1;
  }
  toml::table table;
  if (!ParseToml(toml_text, table)) return 0;
  for (const std::string& o : overrides) {
    const Status st = tokenrl::config::ApplyOverride(table, o);
    if (!st.ok()) {
      Require(!st.message().empty(), "a rejected override must say why");
      return 0;
    }
  }
  TrainConfig config;
  const Status st = tokenrl::config::ParseTable(table, config);
  if (!st.ok()) {
    Require(!st.message().empty(), "a rejected config must say why");
    return 0;
  }
  const std::string printed = tokenrl::config::ToToml(config);
  toml::table reread;
  Require(ParseToml(printed, reread), "ToToml printed text that is not TOML:\n" + printed);
  TrainConfig again;
  const Status st2 = tokenrl::config::ParseTable(reread, again);
  Require(st2.ok(), "an accepted config, printed, is rejected: " + st2.ToString());
  Require(tokenrl::config::ToToml(again) == printed, "print -> parse -> print changed the config:\n" + printed);
  config.ResolveSeeds();
  return 0;
}
