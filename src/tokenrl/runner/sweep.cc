#include "tokenrl/runner/sweep.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <iostream>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "tokenrl/config/config.h"
#include "tokenrl/core/file_util.h"
#include "tokenrl/runner/train_config.h"
#include "tokenrl/runner/trainer.h"

namespace tokenrl::runner {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// TOML text of a scalar or array value (for --set).
StatusOr<std::string> NodeToToml(const toml::node& node, const std::string& path) {
  if (auto s = node.value_exact<std::string>()) return config::internal::QuoteTomlString(*s);
  if (auto i = node.value_exact<int64_t>()) return std::to_string(*i);
  if (auto d = node.value_exact<double>()) return config::internal::DoubleToToml(*d);
  if (auto b = node.value_exact<bool>()) return std::string(*b ? "true" : "false");
  if (const toml::array* arr = node.as_array()) {
    std::string out = "[";
    for (size_t i = 0; i < arr->size(); ++i) {
      TOKENRL_ASSIGN_OR_RETURN(std::string v, NodeToToml((*arr)[i], fmt::format("{}[{}]", path, i)));
      out += (i ? ", " : "") + v;
    }
    return out + "]";
  }
  return Status::InvalidArgument(
      fmt::format("{}: expected a string, number, boolean or array, got {}", path, config::internal::TypeName(node)));
}

Status CheckKeys(const toml::table& table, const std::string& path, const std::vector<std::string>& allowed) {
  for (const auto& [key, node] : table) {
    if (std::find(allowed.begin(), allowed.end(), key.str()) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return Status::InvalidArgument(fmt::format("{}: unknown key; allowed keys here: {}",
                                                 config::internal::JoinPath(path, key.str()), list));
    }
  }
  return Status::Ok();
}

Status ReadStrings(const toml::table& table, const std::string& key, const std::string& path,
                   std::vector<std::string>& out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return Status::Ok();
  const std::string full = config::internal::JoinPath(path, key);
  if (auto s = node->value_exact<std::string>()) {
    out = {*s};
    return Status::Ok();
  }
  const toml::array* arr = node->as_array();
  if (arr == nullptr) {
    return Status::InvalidArgument(
        fmt::format("{}: expected an array of strings, got {}", full, config::internal::TypeName(*node)));
  }
  out.clear();
  for (size_t i = 0; i < arr->size(); ++i) {
    auto s = (*arr)[i].value_exact<std::string>();
    if (!s) {
      return Status::InvalidArgument(fmt::format("{}[{}]: expected a string, got {}", full, i,
                                                 config::internal::TypeName((*arr)[i])));
    }
    out.push_back(*s);
  }
  return Status::Ok();
}

Status ReadInt(const toml::table& table, const std::string& key, const std::string& path, int64_t lo, int64_t hi,
               int64_t& out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return Status::Ok();
  const std::string full = config::internal::JoinPath(path, key);
  auto v = node->value_exact<int64_t>();
  if (!v) return Status::InvalidArgument(fmt::format("{}: expected an integer, got {}", full, config::internal::TypeName(*node)));
  if (*v < lo || *v > hi) return Status::InvalidArgument(fmt::format("{}: value {} is out of range; allowed: in [{}, {}]", full, *v, lo, hi));
  out = *v;
  return Status::Ok();
}

Status ReadString(const toml::table& table, const std::string& key, const std::string& path, std::string& out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return Status::Ok();
  auto v = node->value_exact<std::string>();
  if (!v) {
    return Status::InvalidArgument(fmt::format("{}: expected a string, got {}", config::internal::JoinPath(path, key),
                                               config::internal::TypeName(*node)));
  }
  out = *v;
  return Status::Ok();
}

// Axes: dotted keys, written quoted ("a.b" = [...]) or as nested tables.
Status CollectAxes(const toml::table& table, const std::string& prefix, std::vector<SweepAxis>& out) {
  for (const auto& [key, node] : table) {
    const std::string dotted = config::internal::JoinPath(prefix, key.str());
    if (const toml::table* sub = node.as_table()) {
      TOKENRL_RETURN_IF_ERROR(CollectAxes(*sub, dotted, out));
      continue;
    }
    const toml::array* arr = node.as_array();
    const std::string path = "axes." + dotted;
    if (arr == nullptr || arr->empty()) {
      return Status::InvalidArgument(fmt::format("{}: expected a non-empty array of values, got {}", path,
                                                 arr ? "an empty array" : config::internal::TypeName(node)));
    }
    SweepAxis axis{dotted, {}};
    for (size_t i = 0; i < arr->size(); ++i) {
      TOKENRL_ASSIGN_OR_RETURN(std::string v, NodeToToml((*arr)[i], fmt::format("{}[{}]", path, i)));
      axis.values.push_back(v);
    }
    out.push_back(std::move(axis));
  }
  return Status::Ok();
}

bool SlugChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '='; }

std::string Slug(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"') continue;
    out += SlugChar(c) ? c : '_';
  }
  return out;
}

std::string ShortGame(const std::string& game) {
  const size_t slash = game.rfind('/');
  return Slug(slash == std::string::npos ? game : game.substr(slash + 1));
}

std::string Hash8(const std::vector<std::string>& parts) {
  std::string text;
  for (const auto& p : parts) text += p + '\n';
  return fmt::format("{:016x}", Checksum64(text)).substr(0, 8);
}

std::string SeedLabel(const std::vector<int64_t>& seeds) {
  bool consecutive = true;
  for (size_t i = 1; i < seeds.size(); ++i) consecutive = consecutive && seeds[i] == seeds[i - 1] + 1;
  if (seeds.size() == 1) return std::to_string(seeds[0]);
  if (consecutive) return fmt::format("{}-{}", seeds.front(), seeds.back());
  std::string out;
  for (int64_t s : seeds) {
    if (!out.empty()) out += '_';
    out += std::to_string(s);
  }
  return out;
}

std::string Bar(int done, int total, int width = 30) {
  const int filled = total > 0 ? done * width / total : width;
  return fmt::format("[{}{}]", std::string(static_cast<size_t>(filled), '#'),
                     std::string(static_cast<size_t>(width - filled), '.'));
}

std::string JobDir(const std::string& sweep_dir, const SweepJob& job) { return sweep_dir + "/" + job.dir; }

// Runs `binary args` in its own process group with stdout/stderr appended to
// `log`; it is killed when this process dies (PR_SET_PDEATHSIG).
pid_t SpawnLogged(const std::string& binary, const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> all{binary};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(137);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execv(binary.c_str(), argv.data());
    std::fprintf(stderr, "sweep: cannot exec %s: %s\n", binary.c_str(), std::strerror(errno));
    _exit(127);
  }
  if (pid > 0) setpgid(pid, pid);
  return pid;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return fmt::format("exit code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "unknown status";
}

void AppendLog(const std::string& log, const std::string& line) {
  FILE* f = std::fopen(log.c_str(), "a");
  if (f == nullptr) return;
  std::fputs(line.c_str(), f);
  std::fclose(f);
}

// Exclusive non-blocking flock on `path`; -1 when another holder has it.
int TryLock(const std::string& path, bool create) {
  const int fd = open(path.c_str(), (create ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0644);
  if (fd < 0) return -2;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

const SweepJob* FindJob(const SweepPlan& plan, const std::string& id) {
  for (const auto& j : plan.jobs)
    if (j.id == id || j.dir == id) return &j;
  return nullptr;
}

void StartAttemptLog(const std::string& dir, int attempt, const std::vector<std::string>& args) {
  std::string cmd;
  for (const auto& a : args) cmd += " " + a;
  AppendLog(dir + "/sweep.log", fmt::format("=== sweep attempt {}: tokenrl{}\n", attempt, cmd));
}

void RecordFailure(const std::string& dir, const std::string& message) {
  (void)WriteFileAtomic(dir + "/FAILED", message + "\n");
}

StatusOr<std::string> RunCapture(const std::string& command, int* exit_code) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return Status::IoError(fmt::format("cannot run {}", command));
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  const int st = pclose(pipe);
  *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return out;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

// ---- parsing -------------------------------------------------------------------

StatusOr<SweepConfig> ParseSweepConfig(const std::string& text, const std::string& dir, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(fmt::format("{}:{}:{}: TOML syntax error: {}", source, e.source().begin.line,
                                               e.source().begin.column, e.description()));
  }
  SweepConfig c;
  c.dir = dir;
  TOKENRL_RETURN_IF_ERROR(CheckKeys(
      root, "", {"name", "base", "set", "games", "seeds", "budget", "pack", "retries", "speeds", "axes", "variants",
                 "slurm"}));
  TOKENRL_RETURN_IF_ERROR(ReadString(root, "name", "", c.name));
  TOKENRL_RETURN_IF_ERROR(ReadStrings(root, "base", "", c.base));
  TOKENRL_RETURN_IF_ERROR(ReadStrings(root, "set", "", c.overrides));
  TOKENRL_RETURN_IF_ERROR(ReadStrings(root, "games", "", c.games));
  if (const toml::node* seeds = root.get("seeds")) {
    const toml::array* arr = seeds->as_array();
    if (arr == nullptr) {
      return Status::InvalidArgument(
          fmt::format("seeds: expected an array of integers, got {}", config::internal::TypeName(*seeds)));
    }
    for (size_t i = 0; i < arr->size(); ++i) {
      auto v = (*arr)[i].value_exact<int64_t>();
      if (!v || *v < 0) {
        return Status::InvalidArgument(fmt::format("seeds[{}]: expected a non-negative integer, got {}", i,
                                                   config::internal::TypeName((*arr)[i])));
      }
      if (std::find(c.seeds.begin(), c.seeds.end(), *v) != c.seeds.end()) {
        return Status::InvalidArgument(fmt::format("seeds[{}]: seed {} is listed twice", i, *v));
      }
      c.seeds.push_back(*v);
    }
  }
  if (c.games.empty()) return Status::InvalidArgument("games: required, a non-empty array of env names");
  if (c.seeds.empty()) return Status::InvalidArgument("seeds: required, a non-empty array of integers");
  TOKENRL_RETURN_IF_ERROR(ReadInt(root, "budget", "", 0, int64_t{1} << 40, c.budget));
  TOKENRL_RETURN_IF_ERROR(ReadInt(root, "pack", "", 0, 4096, c.pack));
  TOKENRL_RETURN_IF_ERROR(ReadInt(root, "retries", "", 0, 100, c.retries));
  TOKENRL_RETURN_IF_ERROR(ReadString(root, "speeds", "", c.speeds));
  if (!c.speeds.empty()) {
    const fs::path p = fs::path(dir) / c.speeds;
    if (!fs::exists(p)) return Status::NotFound(fmt::format("speeds: speed table {} does not exist", p.string()));
    c.speeds = p.lexically_normal().string();
  }
  if (const toml::node* axes = root.get("axes")) {
    const toml::table* t = axes->as_table();
    if (t == nullptr) return Status::InvalidArgument(fmt::format("axes: expected a table, got {}", config::internal::TypeName(*axes)));
    TOKENRL_RETURN_IF_ERROR(CollectAxes(*t, "", c.axes));
  }
  if (const toml::node* variants = root.get("variants")) {
    const toml::table* t = variants->as_table();
    if (t == nullptr) {
      return Status::InvalidArgument(
          fmt::format("variants: expected a table of named variants, got {}", config::internal::TypeName(*variants)));
    }
    for (const auto& [key, node] : *t) {
      SweepVariant v;
      v.name = std::string(key.str());
      const std::string path = "variants." + v.name;
      if (v.name.empty() || Slug(v.name) != v.name) {
        return Status::InvalidArgument(
            fmt::format("{}: a variant name may only hold letters, digits, '_', '.', '-' and '='", path));
      }
      if (auto s = node.value_exact<std::string>()) {
        v.configs = {*s};  // Shorthand: name = "file.toml".
      } else if (const toml::table* vt = node.as_table()) {
        TOKENRL_RETURN_IF_ERROR(CheckKeys(*vt, path, {"configs", "set"}));
        TOKENRL_RETURN_IF_ERROR(ReadStrings(*vt, "configs", path, v.configs));
        TOKENRL_RETURN_IF_ERROR(ReadStrings(*vt, "set", path, v.overrides));
      } else {
        return Status::InvalidArgument(fmt::format("{}: expected a table (configs, set) or a config file name, got {}",
                                                   path, config::internal::TypeName(node)));
      }
      for (size_t i = 0; i < v.configs.size(); ++i) {
        const fs::path p = fs::path(dir) / v.configs[i];
        if (!fs::exists(p)) {
          return Status::NotFound(fmt::format("{}.configs[{}]: config file {} does not exist", path, i, p.string()));
        }
      }
      c.variants.push_back(std::move(v));
    }
  }
  for (size_t i = 0; i < c.base.size(); ++i) {
    const fs::path p = fs::path(dir) / c.base[i];
    if (!fs::exists(p)) return Status::NotFound(fmt::format("base[{}]: config file {} does not exist", i, p.string()));
  }
  if (const toml::node* slurm = root.get("slurm")) {
    const toml::table* t = slurm->as_table();
    if (t == nullptr) return Status::InvalidArgument(fmt::format("slurm: expected a table, got {}", config::internal::TypeName(*slurm)));
    TOKENRL_RETURN_IF_ERROR(CheckKeys(*t, "slurm", {"partition", "time", "cpus", "mem", "extra"}));
    TOKENRL_RETURN_IF_ERROR(ReadString(*t, "partition", "slurm", c.slurm.partition));
    TOKENRL_RETURN_IF_ERROR(ReadString(*t, "time", "slurm", c.slurm.time));
    TOKENRL_RETURN_IF_ERROR(ReadInt(*t, "cpus", "slurm", 1, 1024, c.slurm.cpus));
    TOKENRL_RETURN_IF_ERROR(ReadString(*t, "mem", "slurm", c.slurm.mem));
    TOKENRL_RETURN_IF_ERROR(ReadStrings(*t, "extra", "slurm", c.slurm.extra));
  }
  return c;
}

StatusOr<SweepConfig> LoadSweepConfig(const std::string& file) {
  if (!fs::exists(file)) return Status::NotFound(fmt::format("sweep file {} does not exist", file));
  TOKENRL_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  const std::string dir = fs::absolute(file).parent_path().string();
  TOKENRL_ASSIGN_OR_RETURN(SweepConfig c, ParseSweepConfig(text, dir, file));
  c.file = file;
  if (c.name.empty()) c.name = fs::path(file).stem().string();
  return c;
}

// ---- expansion -----------------------------------------------------------------

StatusOr<SweepPlan> ExpandSweep(const SweepConfig& config, int64_t pack_override, int64_t budget_override) {
  SweepPlan plan;
  plan.name = config.name;
  const int64_t budget = budget_override > 0 ? budget_override : config.budget;
  const int64_t pack_max = pack_override >= 0 ? pack_override : config.pack;
  std::vector<SweepVariant> variants = config.variants;
  if (variants.empty()) variants.push_back({"base", {}, {}});
  // Cartesian product of the axes (the last axis varies fastest).
  std::vector<std::vector<size_t>> combos{{}};
  for (const auto& axis : config.axes) {
    std::vector<std::vector<size_t>> next;
    for (const auto& c : combos) {
      for (size_t i = 0; i < axis.values.size(); ++i) {
        next.push_back(c);
        next.back().push_back(i);
      }
    }
    combos = std::move(next);
  }
  auto absolute = [&](const std::string& f) { return fs::absolute(fs::path(config.dir) / f).lexically_normal().string(); };
  std::set<std::string> ids;
  for (const auto& v : variants) {
    std::vector<std::string> written = config.base;
    written.insert(written.end(), v.configs.begin(), v.configs.end());
    std::vector<std::string> files;
    for (const auto& f : written) files.push_back(absolute(f));
    for (const auto& combo : combos) {
      std::string group = v.name;
      std::vector<std::string> overrides = config.overrides;
      if (budget > 0) overrides.push_back(fmt::format("schedule.total_env_steps={}", budget));
      overrides.insert(overrides.end(), v.overrides.begin(), v.overrides.end());
      for (size_t a = 0; a < config.axes.size(); ++a) {
        const SweepAxis& axis = config.axes[a];
        const std::string& value = axis.values[combo[a]];
        overrides.push_back(axis.key + "=" + value);
        const size_t dot = axis.key.rfind('.');
        group += "-" + Slug((dot == std::string::npos ? axis.key : axis.key.substr(dot + 1)) + "=" + value);
      }
      for (const auto& game : config.games) {
        std::vector<std::string> cell_overrides = overrides;
        cell_overrides.push_back("env.name=" + config::internal::QuoteTomlString(game));
        std::vector<int> cell_indices;
        for (int64_t seed : config.seeds) {
          SweepCell cell;
          cell.group = group;
          cell.variant = v.name;
          cell.game = game;
          cell.seed = seed;
          cell.files = files;
          cell.overrides = cell_overrides;
          std::vector<std::string> parts = written;
          parts.insert(parts.end(), cell_overrides.begin(), cell_overrides.end());
          parts.push_back(fmt::format("seed={}", seed));
          cell.id = fmt::format("{}-{}-s{}-{}", group, ShortGame(game), seed, Hash8(parts));
          if (!ids.insert(cell.id).second) {
            return Status::InvalidArgument(fmt::format("two cells share the id {} (a variant or axis value repeated?)", cell.id));
          }
          cell_indices.push_back(static_cast<int>(plan.cells.size()));
          plan.cells.push_back(std::move(cell));
        }
        // Pack the seeds of this (group, game) into jobs of up to pack_max members.
        const size_t k = pack_max == 0 ? cell_indices.size() : static_cast<size_t>(pack_max);
        for (size_t start = 0; start < cell_indices.size(); start += k) {
          SweepJob job;
          job.group = group;
          job.files = files;
          job.overrides = cell_overrides;
          for (size_t i = start; i < std::min(cell_indices.size(), start + k); ++i) {
            job.cells.push_back(cell_indices[i]);
            job.seeds.push_back(plan.cells[static_cast<size_t>(cell_indices[i])].seed);
          }
          job.overrides.push_back(fmt::format("seed={}", job.seeds.front()));
          std::string hash;
          if (job.seeds.size() == 1) {
            const std::string& cid = plan.cells[static_cast<size_t>(job.cells[0])].id;
            hash = cid.substr(cid.size() - 8);
          } else {
            job.overrides.push_back(fmt::format("vector_env.members={}", job.seeds.size()));
            std::vector<std::string> parts = written;
            parts.insert(parts.end(), job.overrides.begin(), job.overrides.end());
            parts.push_back("seeds=" + SeedLabel(job.seeds));
            hash = Hash8(parts);
          }
          job.id = fmt::format("{}-s{}-{}", ShortGame(game), SeedLabel(job.seeds), hash);
          job.dir = group + "/" + job.id;
          plan.jobs.push_back(std::move(job));
        }
      }
    }
  }
  return plan;
}

// ---- plan file -------------------------------------------------------------------

std::string PlanToJson(const SweepPlan& plan) {
  nlohmann::json j;
  j["name"] = plan.name;
  j["cells"] = nlohmann::json::array();
  for (const auto& c : plan.cells) {
    j["cells"].push_back({{"id", c.id}, {"group", c.group}, {"variant", c.variant}, {"game", c.game},
                          {"seed", c.seed}, {"files", c.files}, {"overrides", c.overrides}});
  }
  j["jobs"] = nlohmann::json::array();
  for (const auto& job : plan.jobs) {
    j["jobs"].push_back({{"id", job.id}, {"dir", job.dir}, {"group", job.group}, {"cells", job.cells},
                         {"seeds", job.seeds}, {"files", job.files}, {"overrides", job.overrides}});
  }
  return j.dump(2) + "\n";
}

StatusOr<SweepPlan> PlanFromJson(const std::string& text) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    SweepPlan plan;
    plan.name = j.at("name").get<std::string>();
    for (const auto& c : j.at("cells")) {
      plan.cells.push_back({c.at("id"), c.at("group"), c.at("variant"), c.at("game"), c.at("seed").get<int64_t>(),
                            c.at("files").get<std::vector<std::string>>(),
                            c.at("overrides").get<std::vector<std::string>>()});
    }
    for (const auto& job : j.at("jobs")) {
      plan.jobs.push_back({job.at("id"), job.at("dir"), job.at("group"), job.at("cells").get<std::vector<int>>(),
                           job.at("seeds").get<std::vector<int64_t>>(),
                           job.at("files").get<std::vector<std::string>>(),
                           job.at("overrides").get<std::vector<std::string>>()});
    }
    return plan;
  } catch (const std::exception& e) {
    return Status::Corruption(fmt::format("sweep plan: {}", e.what()));
  }
}

StatusOr<SweepPlan> ReadPlan(const std::string& sweep_dir) {
  const std::string path = sweep_dir + "/sweep.plan.json";
  if (!fs::exists(path)) {
    return Status::NotFound(fmt::format("{} is not a sweep directory (no sweep.plan.json)", sweep_dir));
  }
  TOKENRL_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto plan = PlanFromJson(text);
  if (!plan.ok()) return plan.status().WithContext(path);
  return plan;
}

Status WritePlan(const std::string& sweep_dir, const SweepPlan& plan) {
  std::error_code ec;
  fs::create_directories(sweep_dir, ec);
  if (ec) return Status::IoError(fmt::format("cannot create {}: {}", sweep_dir, ec.message()));
  return WriteFileAtomic(sweep_dir + "/sweep.plan.json", PlanToJson(plan));
}

StatusOr<SweepCost> EstimateCost(const SweepPlan& plan) {
  SweepCost cost;
  for (const auto& job : plan.jobs) {
    auto config = config::Load<TrainConfig>(job.files, job.overrides);
    if (!config.ok()) return config.status().WithContext(fmt::format("job {}", job.dir));
    const int64_t steps = config->schedule.total_env_steps;
    const int64_t learning = std::max<int64_t>(0, steps - config->agent.min_replay_env_steps);
    cost.env_steps += steps * config->vector_env.members;
    cost.gradient_updates += learning / std::max<int64_t>(1, config->agent.update_period_env_steps);
    cost.processes += 1;
  }
  return cost;
}

// ---- state ------------------------------------------------------------------------

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kPending: return "pending";
    case JobState::kRunning: return "running";
    case JobState::kDone: return "done";
    case JobState::kFailed: return "failed";
  }
  return "?";
}

JobState GetJobState(const std::string& sweep_dir, const SweepJob& job, bool* partial) {
  const std::string dir = JobDir(sweep_dir, job);
  if (partial != nullptr) *partial = fs::exists(dir + "/config.resolved.toml");
  if (fs::exists(dir + "/DONE")) return JobState::kDone;
  const int fd = TryLock(dir + "/sweep.lock", false);
  if (fd == -1) return JobState::kRunning;
  if (fd >= 0) close(fd);
  if (fs::exists(dir + "/FAILED")) return JobState::kFailed;
  return JobState::kPending;
}

std::vector<std::string> TrainArguments(const std::string& sweep_dir, const SweepJob& job, int64_t learner_threads) {
  const std::string dir = JobDir(sweep_dir, job);
  std::vector<std::string> args{"train"};
  if (fs::exists(dir + "/config.resolved.toml")) {
    args.insert(args.end(), {"--resume", dir, "-q"});
  } else {
    for (const auto& f : job.files) args.insert(args.end(), {"--config", f});
    for (const auto& o : job.overrides) args.insert(args.end(), {"--set", o});
    args.insert(args.end(), {"--out", dir, "-q"});
  }
  if (learner_threads > 0) args.insert(args.end(), {"--set", fmt::format("learner.num_threads={}", learner_threads)});
  return args;
}

StatusOr<int> LockSweepDir(const std::string& sweep_dir) {
  std::error_code ec;
  fs::create_directories(sweep_dir, ec);
  const std::string path = sweep_dir + "/sweep.lock";
  const int fd = TryLock(path, true);
  if (fd < 0) {
    auto holder = ReadFile(path);
    std::string pid = holder.ok() ? holder.value() : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return Status::Internal(fmt::format(
        "another sweep driver{} is running on {} (lock {}); wait for it to finish or stop it first",
        pid.empty() ? "" : " (pid " + pid + ")", sweep_dir, path));
  }
  const std::string text = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) == 0) (void)!write(fd, text.data(), text.size());
  return fd;
}

// ---- local backend ------------------------------------------------------------------

StatusOr<SweepRunResult> RunSweepLocal(const std::string& sweep_dir, const SweepPlan& plan,
                                       const LocalRunOptions& options) {
  SweepRunResult result;
  const int total = static_cast<int>(plan.jobs.size());
  std::deque<size_t> queue;
  for (size_t i = 0; i < plan.jobs.size(); ++i) {
    if (GetJobState(sweep_dir, plan.jobs[i]) == JobState::kDone) {
      ++result.skipped;
    } else {
      queue.push_back(i);
    }
  }
  result.done = result.skipped;
  if (options.verbose) {
    std::cout << fmt::format("sweep {}: {} job(s) ({} cell(s)), {} already done, {} to run on {} worker(s)\n",
                             plan.name, total, plan.cells.size(), result.skipped, queue.size(), options.workers)
              << std::flush;
  }
  struct Running {
    pid_t pid;
    size_t job;
    int lock_fd;
    Clock::time_point start;
  };
  std::vector<Running> running;
  std::vector<int> attempts(plan.jobs.size(), 0);
  auto stopped = [&] { return options.stop != nullptr && options.stop->load(); };
  while (!queue.empty() || !running.empty()) {
    while (!stopped() && static_cast<int>(running.size()) < options.workers && !queue.empty()) {
      const size_t j = queue.front();
      queue.pop_front();
      const SweepJob& job = plan.jobs[j];
      const std::string dir = JobDir(sweep_dir, job);
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) return Status::IoError(fmt::format("cannot create {}: {}", dir, ec.message()));
      // A child being spawned for another job holds copies of every open
      // lock descriptor between its fork() and exec() (O_CLOEXEC closes them
      // only at exec), so a just-released lock can look held for an instant:
      // retry briefly before concluding another process owns the job.
      int lock = TryLock(dir + "/sweep.lock", true);
      for (int tries = 0; lock == -1 && tries < 200; ++tries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        lock = TryLock(dir + "/sweep.lock", true);
      }
      if (lock < 0) {
        std::cout << fmt::format("sweep: {} is locked by another process (a Slurm task?); skipped\n", job.dir);
        result.failed.push_back(job.dir + " (locked by another process)");
        continue;
      }
      const std::vector<std::string> args = TrainArguments(sweep_dir, job);
      ++attempts[j];
      ++result.attempts;
      StartAttemptLog(dir, attempts[j], args);
      const pid_t pid = SpawnLogged(options.binary, args, dir + "/sweep.log");
      if (pid < 0) {
        close(lock);
        return Status::Internal(fmt::format("fork failed: {}", std::strerror(errno)));
      }
      running.push_back({pid, j, lock, Clock::now()});
    }
    if (stopped()) {
      result.interrupted = true;
      for (const auto& r : running) kill(-r.pid, SIGTERM);
      const auto deadline = Clock::now() + std::chrono::seconds(5);
      for (const auto& r : running) {
        int status = 0;
        while (waitpid(r.pid, &status, WNOHANG) == 0) {
          if (Clock::now() > deadline) {
            kill(-r.pid, SIGKILL);
            waitpid(r.pid, &status, 0);
            break;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        AppendLog(JobDir(sweep_dir, plan.jobs[r.job]) + "/sweep.log", "=== sweep: interrupted; resumable\n");
        close(r.lock_fd);
      }
      if (options.verbose) {
        std::cout << fmt::format("sweep: interrupted; stopped {} running job(s). Run the same command again to resume.\n",
                                 running.size());
      }
      running.clear();
      return result;
    }
    bool reaped = false;
    for (size_t r = 0; r < running.size(); ++r) {
      int status = 0;
      const pid_t w = waitpid(running[r].pid, &status, WNOHANG);
      if (w == 0) continue;
      reaped = true;
      const Running done = running[r];
      running.erase(running.begin() + static_cast<long>(r));
      --r;
      const SweepJob& job = plan.jobs[done.job];
      const std::string dir = JobDir(sweep_dir, job);
      const double secs = std::chrono::duration<double>(Clock::now() - done.start).count();
      const bool ok = w > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && fs::exists(dir + "/DONE");
      close(done.lock_fd);
      if (ok) {
        std::error_code ec;
        fs::remove(dir + "/FAILED", ec);
        ++result.ran;
        ++result.done;
        if (options.verbose) {
          std::cout << fmt::format("sweep: {} {}/{} done  {} ({:.1f} s)\n", Bar(result.done, total), result.done,
                                   total, job.dir, secs)
                    << std::flush;
        }
        continue;
      }
      const std::string why = w < 0 ? std::string("lost") : DescribeExit(status);
      AppendLog(dir + "/sweep.log", fmt::format("=== sweep attempt {} failed: {}\n", attempts[done.job], why));
      if (attempts[done.job] <= options.retries && !stopped()) {
        if (options.verbose) {
          std::cout << fmt::format("sweep: {} failed ({}); retrying (attempt {} of {}), resuming from its checkpoint\n",
                                   job.dir, why, attempts[done.job] + 1, options.retries + 1)
                    << std::flush;
        }
        queue.push_front(done.job);
      } else {
        const std::string message =
            fmt::format("{} failed after {} attempt(s): {}; see {}/sweep.log", job.dir, attempts[done.job], why, dir);
        RecordFailure(dir, message);
        result.failed.push_back(job.dir);
        if (options.verbose) std::cout << "sweep: FAILED " << message << "\n" << std::flush;
      }
    }
    if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return result;
}

Status RunOneJob(const std::string& sweep_dir, const SweepPlan& plan, const std::string& job_id,
                 const std::string& binary, int64_t retries, int64_t learner_threads) {
  const SweepJob* job = FindJob(plan, job_id);
  if (job == nullptr) return Status::NotFound(fmt::format("no job {} in the plan of {}", job_id, sweep_dir));
  const std::string dir = JobDir(sweep_dir, *job);
  std::error_code ec;
  fs::create_directories(dir, ec);
  const int lock = TryLock(dir + "/sweep.lock", true);
  if (lock < 0) {
    std::cout << fmt::format("sweep run-job: {} is already running elsewhere (locked); nothing to do\n", job->dir);
    return Status::Ok();
  }
  std::string last;
  for (int attempt = 1; attempt <= retries + 1; ++attempt) {
    if (fs::exists(dir + "/DONE")) break;
    const std::vector<std::string> args = TrainArguments(sweep_dir, *job, learner_threads);
    StartAttemptLog(dir, attempt, args);
    const pid_t pid = SpawnLogged(binary, args, dir + "/sweep.log");
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
      close(lock);
      return Status::Internal("cannot start tokenrl train");
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && fs::exists(dir + "/DONE")) break;
    last = DescribeExit(status);
    AppendLog(dir + "/sweep.log", fmt::format("=== sweep attempt {} failed: {}\n", attempt, last));
  }
  close(lock);
  if (fs::exists(dir + "/DONE")) {
    fs::remove(dir + "/FAILED", ec);
    std::cout << fmt::format("sweep run-job: {} done\n", job->dir);
    return Status::Ok();
  }
  const std::string message = fmt::format("{} failed after {} attempt(s): {}; see {}/sweep.log", job->dir,
                                          retries + 1, last, dir);
  RecordFailure(dir, message);
  return Status::Internal(message);
}

// ---- Slurm backend --------------------------------------------------------------------

std::string SlurmBatchScript(const std::string& sweep_dir, const std::string& list_file, int num_tasks,
                             const SlurmRunOptions& options) {
  const SlurmOptions& s = options.slurm;
  std::string out = "#!/bin/bash\n";
  out += fmt::format("#SBATCH --job-name=tokenrl-sweep\n#SBATCH --array=0-{}\n", num_tasks - 1);
  out += fmt::format("#SBATCH --output={}/slurm/%A_%a.out\n", sweep_dir);
  out += fmt::format("#SBATCH --cpus-per-task={}\n#SBATCH --ntasks=1\n", s.cpus);
  if (!s.time.empty()) out += fmt::format("#SBATCH --time={}\n", s.time);
  if (!s.partition.empty()) out += fmt::format("#SBATCH --partition={}\n", s.partition);
  if (!s.mem.empty()) out += fmt::format("#SBATCH --mem={}\n", s.mem);
  out += "#SBATCH --requeue\n";
  std::string shell;
  for (const auto& line : s.extra) {
    if (line.rfind("#SBATCH", 0) == 0) {
      out += line + "\n";
    } else if (line.rfind("--", 0) == 0) {
      out += "#SBATCH " + line + "\n";
    } else {
      shell += line + "\n";
    }
  }
  out += "# One array task per job of the sweep plan; a requeued or re-run task resumes from its checkpoint.\n";
  out += "set -eu\n" + shell;
  out += fmt::format("JOB=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {})\n", ShellQuote(list_file));
  out += fmt::format("exec {} sweep run-job {} \"$JOB\" --retries {}\n", ShellQuote(options.binary),
                     ShellQuote(sweep_dir), options.retries);
  return out;
}

StatusOr<SweepRunResult> RunSweepSlurm(const std::string& sweep_dir_in, const SweepPlan& plan,
                                       const SlurmRunOptions& options) {
  const std::string sweep_dir = fs::absolute(sweep_dir_in).lexically_normal().string();
  SweepRunResult result;
  const int total = static_cast<int>(plan.jobs.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < plan.jobs.size(); ++i) {
    if (GetJobState(sweep_dir, plan.jobs[i]) == JobState::kDone) {
      ++result.skipped;
    } else {
      todo.push_back(i);
    }
  }
  result.done = result.skipped;
  if (options.verbose) {
    std::cout << fmt::format("sweep {}: {} job(s), {} already done, {} to submit as a Slurm job array\n", plan.name,
                             total, result.skipped, todo.size())
              << std::flush;
  }
  if (todo.empty()) return result;
  const std::string slurm_dir = sweep_dir + "/slurm";
  std::error_code ec;
  fs::create_directories(slurm_dir, ec);
  int n = 0;
  while (fs::exists(fmt::format("{}/submit-{}.sbatch", slurm_dir, n))) ++n;
  const std::string list = fmt::format("{}/submit-{}.jobs", slurm_dir, n);
  const std::string script = fmt::format("{}/submit-{}.sbatch", slurm_dir, n);
  std::string ids;
  for (size_t i : todo) ids += plan.jobs[i].dir + "\n";
  TOKENRL_RETURN_IF_ERROR(WriteFileAtomic(list, ids));
  TOKENRL_RETURN_IF_ERROR(WriteFileAtomic(script, SlurmBatchScript(sweep_dir, list, static_cast<int>(todo.size()), options)));
  int rc = 0;
  TOKENRL_ASSIGN_OR_RETURN(std::string out, RunCapture("sbatch --parsable " + ShellQuote(script) + " 2>&1", &rc));
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (rc != 0) return Status::Internal(fmt::format("sbatch failed (exit {}): {}", rc, out));
  const std::string job_id = out.substr(0, out.find(';'));
  if (job_id.empty() || job_id.find_first_not_of("0123456789") != std::string::npos) {
    return Status::Internal(fmt::format("sbatch printed an unexpected job id: {}", out));
  }
  (void)WriteFileAtomic(fmt::format("{}/submit-{}.jobid", slurm_dir, n), job_id + "\n");
  if (options.verbose) {
    std::cout << fmt::format("sweep: submitted Slurm array job {} ({} task(s)); script {}\n", job_id, todo.size(),
                             script)
              << std::flush;
  }
  if (!options.follow) return result;
  static const std::set<std::string> kActive{"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED",
                                              "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "SIGNALING",
                                              "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"};
  int last_done = -1;
  int quiet_polls = 0;  // Polls in a row where squeue listed no active task.
  while (true) {
    if (options.stop != nullptr && options.stop->load()) {
      result.interrupted = true;
      std::cout << fmt::format("sweep: stopped following; Slurm job {} keeps running (scancel {} to stop it). "
                               "`tokenrl sweep status {}` shows progress.\n",
                               job_id, job_id, sweep_dir);
      return result;
    }
    int qrc = 0;
    auto q = RunCapture(fmt::format("squeue -h -r -t all -j {} -o '%K %T' 2>/dev/null", job_id), &qrc);
    int active = 0;
    if (q.ok() && qrc == 0) {
      size_t pos = 0;
      const std::string& text = q.value();
      while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        const size_t sp = line.find(' ');
        if (sp == std::string::npos) continue;
        if (kActive.count(line.substr(sp + 1))) ++active;
      }
    }
    int done = 0;
    for (size_t i : todo) done += GetJobState(sweep_dir, plan.jobs[i]) == JobState::kDone;
    if (options.verbose && done != last_done) {
      std::cout << fmt::format("sweep: {} {}/{} done ({} Slurm task(s) active)\n", Bar(result.skipped + done, total),
                               result.skipped + done, total, active)
                << std::flush;
      last_done = done;
    }
    // squeue can miss a job for a moment (controller busy); stop after 3 quiet polls in a row.
    quiet_polls = active == 0 ? quiet_polls + 1 : 0;
    if (quiet_polls >= 3 || done == static_cast<int>(todo.size())) break;
    std::this_thread::sleep_for(std::chrono::duration<double>(options.poll_seconds));
  }
  for (size_t i : todo) {
    if (GetJobState(sweep_dir, plan.jobs[i]) == JobState::kDone) {
      ++result.ran;
      ++result.done;
    } else {
      result.failed.push_back(plan.jobs[i].dir);
    }
  }
  return result;
}

// ---- status ---------------------------------------------------------------------------

std::string SweepStatusText(const std::string& sweep_dir, const SweepPlan& plan, bool list_jobs) {
  std::map<JobState, int> counts;
  int partial = 0, cells_done = 0;
  std::string lines;
  for (const auto& job : plan.jobs) {
    bool p = false;
    const JobState s = GetJobState(sweep_dir, job, &p);
    ++counts[s];
    if (s == JobState::kDone) cells_done += static_cast<int>(job.cells.size());
    if (s == JobState::kPending && p) ++partial;
    if (list_jobs || s == JobState::kFailed || s == JobState::kRunning) {
      lines += fmt::format("  {:<8} {}{}\n", JobStateName(s), job.dir,
                           s == JobState::kPending && p ? " (interrupted; resumes from its checkpoint)" : "");
    }
  }
  const int total = static_cast<int>(plan.jobs.size());
  std::string out = fmt::format("sweep {}: {} cell(s) in {} job(s)\n", plan.name, plan.cells.size(), total);
  out += fmt::format("{} {}/{} jobs done ({:.0f}%), {}/{} cells\n", Bar(counts[JobState::kDone], total),
                     counts[JobState::kDone], total, total ? 100.0 * counts[JobState::kDone] / total : 100.0,
                     cells_done, plan.cells.size());
  out += fmt::format("done {}  running {}  failed {}  pending {}{}\n", counts[JobState::kDone],
                     counts[JobState::kRunning], counts[JobState::kFailed], counts[JobState::kPending],
                     partial ? fmt::format(" ({} interrupted)", partial) : "");
  return out + lines;
}

}  // namespace tokenrl::runner
