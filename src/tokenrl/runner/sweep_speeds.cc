#include "tokenrl/runner/sweep_speeds.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "tokenrl/config/config.h"
#include "tokenrl/core/file_util.h"

namespace tokenrl::runner {
namespace {

namespace fs = std::filesystem;

// Stem of the first file that lies directly in a folder named `folder`.
std::string StemIn(const std::vector<std::string>& files, const std::string& folder) {
  for (const auto& f : files) {
    const fs::path p(f);
    if (p.parent_path().filename() == folder) return p.stem().string();
  }
  return "";
}

Status FieldError(const std::string& path, const std::string& what, const toml::node& node) {
  return Status::InvalidArgument(fmt::format("{}: expected {}, got {}", path, what, config::internal::TypeName(node)));
}

}  // namespace

std::string SpeedKey::ToString() const {
  return fmt::format("agent={} encoder={} network={} width={} E={} threads={}", agent.empty() ? "-" : agent, encoder,
                     network.empty() ? "-" : network, width, members, threads);
}

const SpeedEntry* SpeedTable::Find(const SpeedKey& key) const {
  for (const auto& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

StatusOr<SpeedTable> ParseSpeedTable(const std::string& text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(fmt::format("{}:{}:{}: TOML syntax error: {}", source, e.source().begin.line,
                                               e.source().begin.column, e.description()));
  }
  SpeedTable table;
  table.file = source;
  for (const auto& [key, node] : root) {
    if (key.str() != "speed") {
      return Status::InvalidArgument(fmt::format("{}: unknown key; allowed keys here: speed", key.str()));
    }
  }
  const toml::node* speeds = root.get("speed");
  if (speeds == nullptr) return table;  // An empty table: every speed is unknown.
  const toml::array* arr = speeds->as_array();
  if (arr == nullptr) return FieldError("speed", "an array of tables ([[speed]])", *speeds);
  const std::vector<std::string> allowed = {"agent",   "encoder", "network",         "width",   "members",
                                            "threads", "env_steps_per_s", "machine", "measured"};
  for (size_t i = 0; i < arr->size(); ++i) {
    const std::string path = fmt::format("speed[{}]", i);
    const toml::table* t = (*arr)[i].as_table();
    if (t == nullptr) return FieldError(path, "a table", (*arr)[i]);
    SpeedEntry e;
    for (const auto& [k, v] : *t) {
      const std::string name(k.str());
      const std::string full = path + "." + name;
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return Status::InvalidArgument(fmt::format("{}: unknown key; allowed keys here: {}", full, list));
      }
      if (name == "agent" || name == "encoder" || name == "network" || name == "machine" || name == "measured") {
        auto s = v.value_exact<std::string>();
        if (!s) return FieldError(full, "a string", v);
        (name == "agent"     ? e.key.agent
         : name == "encoder" ? e.key.encoder
         : name == "network" ? e.key.network
         : name == "machine" ? e.machine
                             : e.measured) = *s;
      } else if (name == "env_steps_per_s") {
        auto d = v.value<double>();  // An integer is fine too.
        if (!d) return FieldError(full, "a number", v);
        if (!(*d > 0.0)) return Status::InvalidArgument(fmt::format("{}: value {} must be > 0", full, *d));
        e.env_steps_per_s = *d;
      } else {
        auto n = v.value_exact<int64_t>();
        if (!n) return FieldError(full, "an integer", v);
        if (*n < 1) return Status::InvalidArgument(fmt::format("{}: value {} must be >= 1", full, *n));
        (name == "width" ? e.key.width : name == "members" ? e.key.members : e.key.threads) = *n;
      }
    }
    for (const char* required : {"agent", "encoder", "network", "width", "members", "env_steps_per_s"}) {
      if (!t->contains(required)) {
        return Status::InvalidArgument(fmt::format("{}.{}: required key is missing", path, required));
      }
    }
    if (table.Find(e.key) != nullptr) {
      return Status::InvalidArgument(fmt::format("{}: a second entry for {}", path, e.key.ToString()));
    }
    table.entries.push_back(std::move(e));
  }
  return table;
}

StatusOr<SpeedTable> LoadSpeedTable(const std::string& file) {
  if (!fs::exists(file)) return Status::NotFound(fmt::format("speed table {} does not exist", file));
  TOKENRL_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  return ParseSpeedTable(text, file);
}

int64_t MixerWidth(const TrainConfig& config) {
  switch (config.network.mixer.type) {
    case nn::MixerType::kSoftMoe:
    case nn::MixerType::kTokenChoice:
    case nn::MixerType::kExpertChoice:
      return config.network.mixer.expert_hidden_units;
    default:
      return config.network.mixer.hidden_units;
  }
}

SpeedKey JobSpeedKey(const SweepJob& job, const TrainConfig& config) {
  SpeedKey key;
  key.agent = StemIn(job.files, "agents");
  key.encoder = std::string(config::EnumToString(config.network.encoder.type));
  key.network = StemIn(job.files, "networks");
  key.width = MixerWidth(config);
  key.members = config.vector_env.members;
  key.threads = config.learner.num_threads;
  return key;
}

StatusOr<SweepHours> EstimateCoreHours(const SweepPlan& plan, const SpeedTable& table) {
  SweepHours hours;
  std::vector<bool> unknown;  // Per group.
  for (const auto& job : plan.jobs) {
    auto config = config::Load<TrainConfig>(job.files, job.overrides);
    if (!config.ok()) return config.status().WithContext(fmt::format("job {}", job.dir));
    size_t gi = 0;
    while (gi < hours.groups.size() && hours.groups[gi].group != job.group) ++gi;
    if (gi == hours.groups.size()) {
      hours.groups.push_back({});
      hours.groups.back().group = job.group;
      unknown.push_back(false);
    }
    GroupHours& g = hours.groups[gi];
    const SpeedKey key = JobSpeedKey(job, *config);
    const int64_t steps = config->schedule.total_env_steps;
    g.jobs += 1;
    g.env_steps_per_member = std::max(g.env_steps_per_member, steps);
    const SpeedEntry* entry = table.Find(key);
    if (std::find(g.keys.begin(), g.keys.end(), key) == g.keys.end()) {
      // An unknown key goes first, so that the text names it.
      g.keys.insert(entry == nullptr ? g.keys.begin() : g.keys.end(), key);
    }
    if (entry == nullptr) {
      unknown[gi] = true;
      continue;
    }
    if (!g.env_steps_per_s || entry->env_steps_per_s < *g.env_steps_per_s) g.env_steps_per_s = entry->env_steps_per_s;
    const double threads = static_cast<double>(std::max<int64_t>(1, config->learner.num_threads));
    g.core_hours = g.core_hours.value_or(0.0) + static_cast<double>(steps) / entry->env_steps_per_s / 3600.0 * threads;
  }
  for (size_t gi = 0; gi < hours.groups.size(); ++gi) {
    GroupHours& g = hours.groups[gi];
    if (unknown[gi]) {
      g.core_hours.reset();
      g.env_steps_per_s.reset();
      hours.unknown_groups += 1;
    } else {
      hours.known_core_hours += g.core_hours.value_or(0.0);
    }
  }
  if (hours.unknown_groups == 0) hours.total_core_hours = hours.known_core_hours;
  return hours;
}

std::string CoreHoursText(const SweepHours& hours, const std::string& speeds_file) {
  std::string out = fmt::format("estimated core-hours (speeds: {}; env steps per second per member):\n",
                                speeds_file.empty() ? "none" : speeds_file);
  size_t width = 0;
  for (const auto& g : hours.groups) width = std::max(width, g.group.size());
  for (const auto& g : hours.groups) {
    const SpeedKey& key = g.keys.front();
    if (g.core_hours) {
      out += fmt::format("  {:<{}}  {} job(s) x {} env steps  {:.0f} steps/s/member  {:.1f} core-hours  ({})\n",
                         g.group, width, g.jobs, g.env_steps_per_member, *g.env_steps_per_s, *g.core_hours,
                         key.ToString());
    } else {
      out += fmt::format("  {:<{}}  {} job(s) x {} env steps  unknown (no measured speed for {})\n", g.group, width,
                         g.jobs, g.env_steps_per_member, key.ToString());
    }
  }
  if (hours.total_core_hours) {
    out += fmt::format("total: {:.1f} core-hours\n", *hours.total_core_hours);
  } else {
    out += fmt::format("total: unknown ({} of {} variant(s) without a measured speed; the others: {:.1f} core-hours)\n",
                       hours.unknown_groups, hours.groups.size(), hours.known_core_hours);
  }
  return out;
}

}  // namespace tokenrl::runner
