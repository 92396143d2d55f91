#include "tokenrl/runner/trainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tokenrl/agents/expert_interventions.h"
#include "tokenrl/core/file_util.h"
#include "tokenrl/core/seed.h"
#include "tokenrl/core/serialization.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::runner {

namespace fs = std::filesystem;

// ---- TrainConfig -------------------------------------------------------------

Status TrainConfig::Validate() const {
  if (!env::EnvRegistry::Global().Contains(env.name)) {
    return env::MakeEnvironment(env).status().WithContext("env.name");
  }
  if (vector_env.obs_dtype != env::ObsDtype::kUint8) {
    return Status::InvalidArgument("vector_env.obs_dtype: training stores uint8 observations; set it to \"uint8\"");
  }
  return Status::Ok();
}

namespace {

constexpr uint64_t kEnvStream = 1, kAgentStream = 2, kLearnerStream = 3, kEvalStream = 4, kInterventionStream = 5;

int64_t StreamSeed(int64_t root, std::initializer_list<uint64_t> ids) {
  return static_cast<int64_t>(DeriveSeed(static_cast<uint64_t>(root), ids) >> 2);  // 62 bits: a valid config seed.
}

}  // namespace

void TrainConfig::ResolveSeeds() {
  if (vector_env.seed == 0) vector_env.seed = StreamSeed(seed, {kEnvStream});
  if (agent.seed == 0) agent.seed = StreamSeed(seed, {kAgentStream});
  if (learner.seed == 0) learner.seed = StreamSeed(seed, {kLearnerStream});
}

// ---- XXH64 -------------------------------------------------------------------

namespace {

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ull, kP2 = 0xC2B2AE3D27D4EB4Full, kP3 = 0x165667B19E3779F9ull,
                   kP4 = 0x85EBCA77C2B2AE63ull, kP5 = 0x27D4EB2F165667C5ull;

uint64_t Read64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // Little-endian hosts only (as ByteWriter).
}
uint32_t Read32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t Round(uint64_t acc, uint64_t input) { return std::rotl(acc + input * kP2, 31) * kP1; }
uint64_t MergeRound(uint64_t acc, uint64_t val) { return (acc ^ Round(0, val)) * kP1 + kP4; }

}  // namespace

uint64_t Checksum64(std::string_view bytes) {
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  uint64_t h;
  if (bytes.size() >= 32) {
    uint64_t v1 = kP1 + kP2, v2 = kP2, v3 = 0, v4 = 0 - kP1;
    for (; p + 32 <= end; p += 32) {
      v1 = Round(v1, Read64(p));
      v2 = Round(v2, Read64(p + 8));
      v3 = Round(v3, Read64(p + 16));
      v4 = Round(v4, Read64(p + 24));
    }
    h = std::rotl(v1, 1) + std::rotl(v2, 7) + std::rotl(v3, 12) + std::rotl(v4, 18);
    h = MergeRound(MergeRound(MergeRound(MergeRound(h, v1), v2), v3), v4);
  } else {
    h = kP5;
  }
  h += bytes.size();
  for (; p + 8 <= end; p += 8) h = std::rotl(h ^ Round(0, Read64(p)), 27) * kP1 + kP4;
  if (p + 4 <= end) {
    h = std::rotl(h ^ (static_cast<uint64_t>(Read32(p)) * kP1), 23) * kP2 + kP3;
    p += 4;
  }
  for (; p < end; ++p) h = std::rotl(h ^ (static_cast<uint64_t>(static_cast<uint8_t>(*p)) * kP5), 11) * kP1;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  return h ^ (h >> 32);
}

namespace {

// ---- Checkpoint files --------------------------------------------------------

constexpr char kMagic[8] = {'T', 'K', 'R', 'L', 'C', 'K', 'P', 'T'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderSize = 32;
constexpr size_t kRecentEpisodes = 100;
constexpr const char* kMetricsHeader =
    "member,env_steps,gradient_updates,episodes,return_mean_recent,loss,q_mean,epsilon,eval_return_mean,"
    "eval_return_std\n";

void FsyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Checkpoints in `dir`, newest (most env steps) first.
std::vector<std::pair<int64_t, std::string>> ListCheckpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= 9 || name.rfind("ckpt-", 0) != 0 || !name.ends_with(".bin")) continue;
    const std::string digits = name.substr(5, name.size() - 9);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    out.emplace_back(std::stoll(digits), entry.path().string());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

Status WriteCheckpointFile(const std::string& path, std::string_view payload) {
  std::string file(kHeaderSize, '\0');
  std::memcpy(file.data(), kMagic, 8);
  const uint32_t version = kFormatVersion;
  const uint64_t size = payload.size(), checksum = Checksum64(payload);
  std::memcpy(file.data() + 8, &version, 4);
  std::memcpy(file.data() + 16, &size, 8);
  std::memcpy(file.data() + 24, &checksum, 8);
  file.append(payload);
  TOKENRL_RETURN_IF_ERROR(WriteFileAtomic(path, file));
  FsyncPath(fs::path(path).parent_path().string(), /*directory=*/true);
  return Status::Ok();
}

// The verified payload of a checkpoint file (Corruption with the reason otherwise).
StatusOr<std::string> ReadCheckpointFile(const std::string& path) {
  TOKENRL_ASSIGN_OR_RETURN(std::string file, ReadFile(path));
  if (file.size() < kHeaderSize || std::memcmp(file.data(), kMagic, 8) != 0) {
    return Status::Corruption(fmt::format("{}: not a tokenrl checkpoint (bad header, {} bytes)", path, file.size()));
  }
  uint32_t version;
  uint64_t size, checksum;
  std::memcpy(&version, file.data() + 8, 4);
  std::memcpy(&size, file.data() + 16, 8);
  std::memcpy(&checksum, file.data() + 24, 8);
  if (version != kFormatVersion) {
    return Status::Corruption(fmt::format("{}: checkpoint format version {}, this build reads {}", path, version,
                                          kFormatVersion));
  }
  if (size != file.size() - kHeaderSize) {
    return Status::Corruption(fmt::format("{}: truncated checkpoint ({} payload bytes, header says {})", path,
                                          file.size() - kHeaderSize, size));
  }
  file.erase(0, kHeaderSize);
  if (Checksum64(file) != checksum) return Status::Corruption(fmt::format("{}: checksum mismatch", path));
  return file;
}

// ---- Shared building blocks --------------------------------------------------

std::string Num(double x) { return std::isfinite(x) ? fmt::format("{:.6g}", x) : std::string(); }

double Mean(const std::deque<double>& xs) {
  if (xs.empty()) return std::numeric_limits<double>::quiet_NaN();
  double s = 0.0;
  for (double x : xs) s += x;
  return s / static_cast<double>(xs.size());
}

nlohmann::json JsonNum(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

}  // namespace

StatusOr<std::unique_ptr<agents::Agent>> MakeAgent(const TrainConfig& c, const env::EnvSpec& spec) {
  nn::NetworkIo io;
  io.channels = spec.observation_shape[0];
  io.height = spec.observation_shape[1];
  io.width = spec.observation_shape[2];
  io.num_actions = spec.num_actions();
  io.input_scale = spec.observation_high > 1.0f ? 1.0f / 255.0f : 1.0f;  // Atari frames vs MinAtar 0/1 grids.
  const int members = static_cast<int>(c.vector_env.members);
  TOKENRL_ASSIGN_OR_RETURN(auto learner, nn::MakeLearner(c.network, c.learner, io, members));
  return agents::Agent::Create(c.agent, std::move(learner), members, static_cast<int>(c.vector_env.envs_per_member));
}

namespace {

// Runs one episode in each of M x episodes fresh environments seeded with
// `seed`; returns [M][episodes] returns.
StatusOr<std::vector<std::vector<double>>> Evaluate(const TrainConfig& c, agents::Agent& agent, int64_t episodes,
                                                    uint64_t seed) {
  env::EnvConfig env_config = c.env;
  const int64_t cap = c.schedule.eval_max_episode_steps;
  env_config.max_episode_steps = env_config.max_episode_steps > 0 ? std::min(env_config.max_episode_steps, cap) : cap;
  env::VectorEnvConfig vec_config;
  vec_config.members = c.vector_env.members;
  vec_config.envs_per_member = episodes;
  vec_config.seed = static_cast<int64_t>(seed >> 1);
  vec_config.num_threads = c.vector_env.num_threads;
  TOKENRL_ASSIGN_OR_RETURN(auto vec, env::VectorEnv::Create(env_config, vec_config));
  vec->Reset();
  const size_t n = static_cast<size_t>(vec->num_envs());
  std::vector<int32_t> actions(n);
  std::vector<uint8_t> done(n, 0);
  std::vector<std::vector<double>> returns(static_cast<size_t>(vec->members()),
                                           std::vector<double>(static_cast<size_t>(episodes), 0.0));
  size_t remaining = n;
  while (remaining > 0) {
    agent.SelectEvalActions(vec->observations_u8(), static_cast<int>(episodes), actions);
    TOKENRL_RETURN_IF_ERROR(vec->Step(actions));
    for (size_t i = 0; i < n; ++i) {
      if (done[i] || !(vec->terminated()[i] || vec->truncated()[i])) continue;
      returns[i / static_cast<size_t>(episodes)][i % static_cast<size_t>(episodes)] = vec->episode_returns()[i];
      done[i] = 1;
      --remaining;
    }
  }
  return returns;
}

// The runner's own state between rows; saved in every checkpoint.
struct RunStats {
  int64_t eval_count = 0;
  uint64_t metrics_bytes = 0;                 // Length of metrics.csv at this point.
  std::vector<int64_t> episodes;              // [M] training episodes finished
  std::vector<std::deque<double>> recent;     // [M] last kRecentEpisodes returns
  std::vector<double> loss_sum, q_sum;        // [M] sums over updates since the last row
  int64_t updates_since_row = 0;
  std::vector<double> eval_mean, eval_std;    // [M] last evaluation (NaN: none yet)
  uint64_t diagnostics_bytes = 0;             // Length of diagnostics.csv (0: not written).
  uint64_t interventions_bytes = 0;           // Length of interventions.csv (0: not written).
  std::vector<std::vector<int64_t>> pruned;   // [M] experts pruned so far, ascending.

  explicit RunStats(int members)
      : episodes(static_cast<size_t>(members), 0),
        recent(static_cast<size_t>(members)),
        loss_sum(static_cast<size_t>(members), 0.0),
        q_sum(static_cast<size_t>(members), 0.0),
        eval_mean(static_cast<size_t>(members), std::numeric_limits<double>::quiet_NaN()),
        eval_std(static_cast<size_t>(members), std::numeric_limits<double>::quiet_NaN()),
        pruned(static_cast<size_t>(members)) {}

  void Save(ByteWriter& w) const {
    w.Write(eval_count);
    w.Write(metrics_bytes);
    w.WriteVector(episodes);
    for (const auto& r : recent) w.WriteVector(std::vector<double>(r.begin(), r.end()));
    w.WriteVector(loss_sum);
    w.WriteVector(q_sum);
    w.Write(updates_since_row);
    w.WriteVector(eval_mean);
    w.WriteVector(eval_std);
    w.Write(diagnostics_bytes);
    w.Write(interventions_bytes);
    for (const auto& p : pruned) w.WriteVector(p);
  }
  bool Load(ByteReader& r) {
    const size_t members = episodes.size();
    r.Read(eval_count);
    r.Read(metrics_bytes);
    r.ReadVector(episodes);
    for (auto& rec : recent) {
      std::vector<double> v;
      r.ReadVector(v);
      rec.assign(v.begin(), v.end());
    }
    r.ReadVector(loss_sum);
    r.ReadVector(q_sum);
    r.Read(updates_since_row);
    r.ReadVector(eval_mean);
    r.ReadVector(eval_std);
    r.Read(diagnostics_bytes);
    r.Read(interventions_bytes);
    for (auto& p : pruned) r.ReadVector(p);
    return r.ok() && episodes.size() == members && loss_sum.size() == members && q_sum.size() == members &&
           eval_mean.size() == members && eval_std.size() == members;
  }
};

// Everything in a checkpoint before the agent's bytes.
struct CheckpointHead {
  std::string config_toml;
  std::vector<uint8_t> observations;
  std::vector<std::string> env_states;
};

bool ReadHead(ByteReader& r, RunStats& stats, CheckpointHead& head) {
  if (!r.ReadString(head.config_toml) || !stats.Load(r) || !r.ReadVector(head.observations)) return false;
  uint64_t n = 0;
  if (!r.Read(n) || n > (1u << 20)) return false;
  head.env_states.resize(n);
  for (auto& s : head.env_states)
    if (!r.ReadString(s)) return false;
  return true;
}

StatusOr<TrainConfig> ParseConfigText(const std::string& text) {
  toml::table table;
  try {
    table = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return Status::Corruption(fmt::format("checkpoint config does not parse: {}", e.description()));
  }
  TrainConfig config;
  TOKENRL_RETURN_IF_ERROR(config::ParseTable(table, config));
  return config;
}

// ---- Trainer -----------------------------------------------------------------

class Trainer {
 public:
  Trainer(TrainConfig config, std::string out_dir, const TrainOptions& options)
      : config_(std::move(config)),
        dir_(std::move(out_dir)),
        ckpt_dir_(dir_ + "/checkpoints"),
        options_(options),
        stats_(static_cast<int>(config_.vector_env.members)) {}
  ~Trainer() {
    if (metrics_ != nullptr) std::fclose(metrics_);
    if (diagnostics_ != nullptr) std::fclose(diagnostics_);
    if (interventions_ != nullptr) std::fclose(interventions_);
  }

  StatusOr<TrainSummary> Run(bool resume) {
    start_time_ = std::chrono::steady_clock::now();
    std::error_code ec;
    fs::create_directories(ckpt_dir_, ec);
    if (ec) return Status::IoError(fmt::format("cannot create {}: {}", ckpt_dir_, ec.message()));
    if (!resume && fs::exists(dir_ + "/config.resolved.toml")) {
      return Status::InvalidArgument(fmt::format(
          "{} already holds a run (config.resolved.toml); resume it with --resume or choose another --out", dir_));
    }
    if (resume && fs::exists(dir_ + "/DONE")) {
      TrainSummary summary;
      summary.already_complete = true;
      return summary;
    }
    resolved_toml_ = config::ToToml(config_);
    TOKENRL_RETURN_IF_ERROR(WriteFileAtomic(dir_ + "/config.resolved.toml", resolved_toml_));
    for (const auto& entry : fs::directory_iterator(ckpt_dir_, ec)) {  // Leftovers of a killed write.
      if (entry.path().extension() == ".tmp") fs::remove(entry.path(), ec);
    }

    TOKENRL_ASSIGN_OR_RETURN(vec_, env::VectorEnv::Create(config_.env, config_.vector_env));
    TOKENRL_ASSIGN_OR_RETURN(agent_, MakeAgent(config_, vec_->spec()));
    vec_->Reset();
    obs_.assign(vec_->observations_u8().begin(), vec_->observations_u8().end());
    actions_.assign(static_cast<size_t>(vec_->num_envs()), 0);

    bool resumed = false;
    if (resume) TOKENRL_RETURN_IF_ERROR(Restore(resumed));
    TOKENRL_RETURN_IF_ERROR(OpenMetrics(resumed));
    TOKENRL_RETURN_IF_ERROR(OpenExpertLogs(resumed));
    start_env_steps_ = agent_->env_steps();

    // A full disk or an output directory turned read-only surfaces as an
    // IoError from a write: stop there, naming the checkpoint to resume from
    // (the last one written whole; a failed write leaves no partial file).
    const auto stop_on_output_error = [&](Status status) {
      if (status.code() != Status::Code::kIoError) return status;
      return Stopped(agent_->env_steps(), status.message(),
                     fmt::format("free space or make {} writable, then continue with --resume", dir_));
    };
    TOKENRL_RETURN_IF_ERROR(stop_on_output_error(Loop()));
    if (options_.progress) Progress(/*force=*/true);
    if (tty_line_) std::cerr << "\n";
    auto finished = Finish();
    if (!finished.ok()) return stop_on_output_error(finished.status());
    return finished;
  }

 private:
  int members() const { return vec_->members(); }

  Status Loop() {
    const auto& s = config_.schedule;
    const int64_t total = s.total_env_steps;
    while (agent_->env_steps() < total) {
      const int64_t before = agent_->env_steps();
      agent_->SelectActions(obs_, actions_);
      TOKENRL_RETURN_IF_ERROR(vec_->Step(actions_));
      const agents::StepView view{obs_,
                                  actions_,
                                  vec_->rewards(),
                                  vec_->terminated(),
                                  vec_->truncated(),
                                  vec_->observations_u8(),
                                  vec_->final_observations_u8()};
      const Status observed = agent_->Observe(view);
      const int64_t after = agent_->env_steps();
      if (!observed.ok()) return Stopped(after, observed.message());
      std::copy(vec_->observations_u8().begin(), vec_->observations_u8().end(), obs_.begin());
      RecordEpisodes();
      TOKENRL_RETURN_IF_ERROR(AccumulateTrainStats(after));
      TOKENRL_RETURN_IF_ERROR(ExpertHooks(before, after));

      const bool last = after >= total;
      const bool eval_due = s.eval_every_env_steps > 0 && (last || Crossed(before, after, s.eval_every_env_steps));
      if (eval_due) TOKENRL_RETURN_IF_ERROR(RunEval());
      if (eval_due || last || Crossed(before, after, s.log_every_env_steps)) {
        TOKENRL_RETURN_IF_ERROR(WriteRows(eval_due));
      }
      if (last || (s.checkpoint_every_env_steps > 0 && Crossed(before, after, s.checkpoint_every_env_steps))) {
        TOKENRL_RETURN_IF_ERROR(WriteCheckpoint());
      }
      if (options_.kill_at_env_steps > 0 && after >= options_.kill_at_env_steps) {
        return Status::Internal("simulated kill");
      }
      if (options_.progress) Progress(/*force=*/false);
    }
    return Status::Ok();
  }

  static bool Crossed(int64_t before, int64_t after, int64_t every) { return before / every != after / every; }

  Status Stopped(int64_t env_steps, const std::string& why,
                 const std::string& next = "continue with --resume after fixing the config") {
    if (tty_line_) std::cerr << "\n";
    return Status::Internal(fmt::format("training stopped at env step {} (per member): {}; last good checkpoint: {} ({})",
                                        env_steps, why, last_checkpoint_.empty() ? "none" : last_checkpoint_, next));
  }

  void RecordEpisodes() {
    const size_t per_member = static_cast<size_t>(vec_->envs_per_member());
    for (size_t i = 0; i < actions_.size(); ++i) {
      if (!(vec_->terminated()[i] || vec_->truncated()[i])) continue;
      const size_t m = i / per_member;
      ++stats_.episodes[m];
      stats_.recent[m].push_back(vec_->episode_returns()[i]);
      if (stats_.recent[m].size() > kRecentEpisodes) stats_.recent[m].pop_front();
    }
  }

  Status AccumulateTrainStats(int64_t env_steps) {
    const agents::TrainStats t = agent_->TakeTrainStats();
    if (t.updates == 0) return Status::Ok();
    for (size_t m = 0; m < static_cast<size_t>(members()); ++m) {
      if (!std::isfinite(t.loss_mean[m]) || !std::isfinite(t.q_mean[m])) {
        return Stopped(env_steps, fmt::format("non-finite loss ({}) or Q mean ({}) for member {}", t.loss_mean[m],
                                              t.q_mean[m], m));
      }
      stats_.loss_sum[m] += t.loss_mean[m] * static_cast<double>(t.updates);
      stats_.q_sum[m] += t.q_mean[m] * static_cast<double>(t.updates);
    }
    stats_.updates_since_row += t.updates;
    return Status::Ok();
  }

  Status RunEval() {
    const uint64_t seed = DeriveSeed(static_cast<uint64_t>(config_.seed),
                                     {kEvalStream, static_cast<uint64_t>(stats_.eval_count)});
    ++stats_.eval_count;
    TOKENRL_ASSIGN_OR_RETURN(auto returns, Evaluate(config_, *agent_, config_.schedule.eval_episodes, seed));
    for (size_t m = 0; m < returns.size(); ++m) {
      double sum = 0.0, sq = 0.0;
      for (double r : returns[m]) sum += r;
      const double mean = sum / static_cast<double>(returns[m].size());
      for (double r : returns[m]) sq += (r - mean) * (r - mean);
      stats_.eval_mean[m] = mean;
      stats_.eval_std[m] = std::sqrt(sq / static_cast<double>(returns[m].size()));
    }
    return Status::Ok();
  }

  Status OpenMetrics(bool resumed) {
    const std::string path = dir_ + "/metrics.csv";
    if (resumed) {
      std::error_code ec;
      const auto size = fs::file_size(path, ec);
      if (ec || size < stats_.metrics_bytes) {
        return Status::Corruption(fmt::format("{} is shorter ({} bytes) than the checkpoint records ({} bytes)", path,
                                              ec ? 0 : size, stats_.metrics_bytes));
      }
      fs::resize_file(path, stats_.metrics_bytes, ec);  // Drops rows written after the checkpoint.
      if (ec) return Status::IoError(fmt::format("cannot truncate {}: {}", path, ec.message()));
      metrics_ = std::fopen(path.c_str(), "ab");
    } else {
      metrics_ = std::fopen(path.c_str(), "wb");
      if (metrics_ != nullptr) {
        std::fputs(kMetricsHeader, metrics_);
        stats_.metrics_bytes = std::strlen(kMetricsHeader);
      }
    }
    if (metrics_ == nullptr) return Status::IoError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    std::fflush(metrics_);
    return Status::Ok();
  }

  Status WriteRows(bool with_eval) {
    std::string rows;
    const int64_t steps = agent_->env_steps();
    for (size_t m = 0; m < static_cast<size_t>(members()); ++m) {
      const double n = static_cast<double>(stats_.updates_since_row);
      const double nan = std::numeric_limits<double>::quiet_NaN();
      rows += fmt::format("{},{},{},{},{},{},{},{},{},{}\n", m, steps, agent_->gradient_updates(), stats_.episodes[m],
                          Num(Mean(stats_.recent[m])), Num(n > 0 ? stats_.loss_sum[m] / n : nan),
                          Num(n > 0 ? stats_.q_sum[m] / n : nan), Num(agent_->epsilon()),
                          with_eval ? Num(stats_.eval_mean[m]) : "", with_eval ? Num(stats_.eval_std[m]) : "");
      stats_.loss_sum[m] = stats_.q_sum[m] = 0.0;
    }
    stats_.updates_since_row = 0;
    if (std::fwrite(rows.data(), 1, rows.size(), metrics_) != rows.size() || std::fflush(metrics_) != 0) {
      return Status::IoError(fmt::format("cannot write {}/metrics.csv: {}", dir_, std::strerror(errno)));
    }
    stats_.metrics_bytes += rows.size();

    // Wall-clock timing goes to progress.csv, which is not reproducible by nature.
    const std::string progress_path = dir_ + "/progress.csv";
    const bool fresh = !fs::exists(progress_path);
    if (std::FILE* f = std::fopen(progress_path.c_str(), "ab")) {
      const double secs = Seconds();
      if (fresh) std::fputs("env_steps,seconds,env_steps_per_s\n", f);
      std::fputs(fmt::format("{},{:.3f},{:.1f}\n", steps, secs, Rate(steps)).c_str(), f);
      std::fclose(f);
    }
    return Status::Ok();
  }

  // ---- Expert diagnostics and interventions ([diagnostics], [interventions]).

  bool DiagnosticsOn() const { return config_.diagnostics.every_env_steps > 0; }
  bool InterventionsOn() const { return config_.interventions.type != InterventionType::kNone; }

  // Opens (fresh: with its header; resumed: truncated to `bytes`) one of the
  // reproducible CSV logs.
  Status OpenLog(const std::string& name, const std::string& header, bool resumed, uint64_t& bytes,
                 std::FILE*& file) {
    const std::string path = dir_ + "/" + name;
    if (resumed && bytes > 0) {
      std::error_code ec;
      const auto size = fs::file_size(path, ec);
      if (ec || size < bytes) {
        return Status::Corruption(
            fmt::format("{} is shorter ({} bytes) than the checkpoint records ({} bytes)", path, ec ? 0 : size, bytes));
      }
      fs::resize_file(path, bytes, ec);
      if (ec) return Status::IoError(fmt::format("cannot truncate {}: {}", path, ec.message()));
      file = std::fopen(path.c_str(), "ab");
    } else {
      file = std::fopen(path.c_str(), "wb");
      if (file != nullptr) {
        std::fputs(header.c_str(), file);
        bytes = header.size();
      }
    }
    if (file == nullptr) return Status::IoError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    std::fflush(file);
    return Status::Ok();
  }

  Status OpenExpertLogs(bool resumed) {
    experts_ = agents::NumExperts(agent_->learner());
    if (InterventionsOn() && experts_ == 0) {
      return Status::InvalidArgument("interventions: the network has no experts (use a MoE mixer)");
    }
    if (config_.interventions.type == InterventionType::kPrune && config_.interventions.num_experts >= experts_) {
      return Status::InvalidArgument(fmt::format("interventions.num_experts: cannot prune {} of {} experts",
                                                 config_.interventions.num_experts, experts_));
    }
    if (DiagnosticsOn()) {
      std::string header = "member,env_steps,batch";
      for (double tau : config_.diagnostics.taus) header += fmt::format(",penultimate_dormant_{}", tau);
      for (int64_t j = 0; j < experts_; ++j) {
        for (double tau : config_.diagnostics.taus) header += fmt::format(",expert{}_dormant_{}", j, tau);
      }
      for (int64_t j = 0; j < experts_; ++j) header += fmt::format(",expert{}_combine_share", j);
      for (int64_t j = 0; j < experts_; ++j) header += fmt::format(",expert{}_load", j);
      header +=
          ",dispatch_entropy,combine_entropy,tokens_dropped,combine_similarity,slot_similarity,feature_srank,"
          "parameter_norm\n";
      TOKENRL_RETURN_IF_ERROR(OpenLog("diagnostics.csv", header, resumed, stats_.diagnostics_bytes, diagnostics_));
    }
    if (InterventionsOn()) {
      TOKENRL_RETURN_IF_ERROR(OpenLog("interventions.csv", "member,env_steps,type,experts,include_router,alpha,beta\n",
                                      resumed, stats_.interventions_bytes, interventions_));
    }
    return Status::Ok();
  }

  Status AppendLog(std::FILE* file, const std::string& rows, uint64_t& bytes, std::string_view name) {
    if (std::fwrite(rows.data(), 1, rows.size(), file) != rows.size() || std::fflush(file) != 0) {
      return Status::IoError(fmt::format("cannot write {}/{}", dir_, name));
    }
    bytes += rows.size();
    return Status::Ok();
  }

  // Diagnostics of every member on the most recent replay observations;
  // empty when the replay holds none yet.
  StatusOr<std::vector<nn::MemberDiagnostics>> RunDiagnostics(const std::vector<double>& taus) {
    std::vector<uint8_t> batch;
    const int n = agent_->RecentObservations(static_cast<int>(config_.diagnostics.batch_size), batch);
    if (n == 0) return std::vector<nn::MemberDiagnostics>{};
    return agent_->learner().Diagnostics(batch, n, taus);
  }

  // Number of schedule points of the intervention in (before, after].
  int64_t DueFirings(int64_t before, int64_t after) const {
    const auto& c = config_.interventions;
    if (c.start_env_steps <= 0 || after < c.start_env_steps) return 0;
    if (c.type == InterventionType::kPrune) {
      int64_t due = 0;
      for (int64_t i = 0; i < c.num_experts; ++i) {
        const int64_t at = c.end_env_steps > c.start_env_steps && c.num_experts > 1
                               ? c.start_env_steps + i * (c.end_env_steps - c.start_env_steps) / (c.num_experts - 1)
                               : c.start_env_steps;
        due += (at > before && at <= after) ? 1 : 0;
      }
      return due;
    }
    if (c.every_env_steps == 0) return (c.start_env_steps > before) ? 1 : 0;
    const int64_t last = c.start_env_steps + (after - c.start_env_steps) / c.every_env_steps * c.every_env_steps;
    return last > before ? 1 : 0;  // Several points in one iteration fire once.
  }

  Status ExpertHooks(int64_t before, int64_t after) {
    nn::Learner& learner = agent_->learner();
    const auto& c = config_.interventions;
    // Pruned experts stay at exactly zero (values and Adam moments).
    for (int m = 0; m < members(); ++m) {
      if (stats_.pruned[m].empty()) continue;
      agents::InterventionTarget t;
      t.experts.assign(stats_.pruned[m].begin(), stats_.pruned[m].end());
      TOKENRL_RETURN_IF_ERROR(agents::PruneExperts(learner, m, t));
    }
    // Diagnostics first: they describe the network training reached.
    if (DiagnosticsOn() && Crossed(before, after, config_.diagnostics.every_env_steps)) {
      TOKENRL_ASSIGN_OR_RETURN(auto diags, RunDiagnostics(config_.diagnostics.taus));
      std::string rows;
      for (size_t m = 0; m < diags.size(); ++m) {
        const nn::MemberDiagnostics& d = diags[m];
        rows += fmt::format("{},{},{}", m, after, config_.diagnostics.batch_size);
        auto cell = [&rows](const std::string& x) {
          rows += ',';
          rows += x;
        };
        for (double x : d.penultimate_dormant) cell(Num(x));
        for (int64_t j = 0; j < experts_; ++j) {
          for (size_t i = 0; i < config_.diagnostics.taus.size(); ++i) {
            cell(j < static_cast<int64_t>(d.expert_dormant.size()) ? Num(d.expert_dormant[j][i]) : std::string());
          }
        }
        for (int64_t j = 0; j < experts_; ++j) {
          cell(j < static_cast<int64_t>(d.combine_share.size()) ? Num(d.combine_share[j]) : std::string());
        }
        for (int64_t j = 0; j < experts_; ++j) {
          cell(j < static_cast<int64_t>(d.expert_load.size()) ? Num(d.expert_load[j]) : std::string());
        }
        const bool moe = !d.combine_share.empty();
        auto routing = [&](double x) { return moe ? Num(x) : std::string(); };
        rows += fmt::format(",{},{},{},{},{},{},{}\n", routing(d.dispatch_entropy), routing(d.combine_entropy),
                            routing(d.tokens_dropped), routing(d.combine_similarity), routing(d.slot_similarity),
                            Num(d.feature_srank), Num(d.parameter_norm));
      }
      TOKENRL_RETURN_IF_ERROR(AppendLog(diagnostics_, rows, stats_.diagnostics_bytes, "diagnostics.csv"));
    }
    if (!InterventionsOn()) return Status::Ok();
    const int64_t due = DueFirings(before, after);
    if (due == 0) return Status::Ok();
    const bool ranked = c.type == InterventionType::kPrune || c.num_experts > 0;
    std::vector<nn::MemberDiagnostics> diags;
    const uint64_t seed =
        DeriveSeed(static_cast<uint64_t>(config_.learner.seed), {kInterventionStream, static_cast<uint64_t>(after)});
    std::string rows;
    for (int64_t firing = 0; firing < (c.type == InterventionType::kPrune ? due : 1); ++firing) {
      if (ranked) {
        TOKENRL_ASSIGN_OR_RETURN(diags, RunDiagnostics({c.dormant_tau}));
      }
      for (int m = 0; m < members(); ++m) {
        std::vector<double> scores(static_cast<size_t>(experts_), 0.0);
        if (m < static_cast<int>(diags.size())) {
          for (int64_t j = 0; j < experts_ && j < static_cast<int64_t>(diags[m].expert_dormant.size()); ++j) {
            scores[j] = diags[m].expert_dormant[j][0];
          }
        }
        const std::vector<int> exclude(stats_.pruned[m].begin(), stats_.pruned[m].end());
        agents::InterventionTarget t;
        t.reset_optimizer = c.reset_optimizer;
        double alpha = c.alpha, beta = c.beta;
        if (c.type == InterventionType::kPrune) {
          t.experts = agents::TopExperts(scores, 1, exclude);
          t.reset_optimizer = true;
          alpha = beta = 0.0;
          TOKENRL_RETURN_IF_ERROR(agents::PruneExperts(learner, m, t));
          for (int j : t.experts) stats_.pruned[m].push_back(j);
          std::sort(stats_.pruned[m].begin(), stats_.pruned[m].end());
        } else {
          t.experts = agents::TopExperts(scores, c.num_experts, exclude);
          t.include_router = c.include_router;
          if (c.type == InterventionType::kReset) {
            alpha = 0.0;
            beta = 1.0;
          }
          TOKENRL_RETURN_IF_ERROR(agents::MixExperts(learner, m, t, alpha, beta, seed));
        }
        std::string experts;
        for (int j : t.experts) {
          if (!experts.empty()) experts += ' ';
          experts += std::to_string(j);
        }
        rows += fmt::format("{},{},{},{},{},{},{}\n", m, after, config::EnumToString(c.type), experts,
                            t.include_router ? 1 : 0, Num(alpha), Num(beta));
      }
    }
    return AppendLog(interventions_, rows, stats_.interventions_bytes, "interventions.csv");
  }

  Status WriteCheckpoint() {
    std::fflush(metrics_);
    ::fsync(::fileno(metrics_));  // The offset recorded below must be on disk.
    for (std::FILE* f : {diagnostics_, interventions_}) {
      if (f == nullptr) continue;
      std::fflush(f);
      ::fsync(::fileno(f));
    }
    ByteWriter w;
    w.WriteString(resolved_toml_);
    stats_.Save(w);
    w.WriteVector(obs_);
    w.Write<uint64_t>(static_cast<uint64_t>(vec_->num_envs()));
    for (int m = 0; m < members(); ++m)
      for (int e = 0; e < vec_->envs_per_member(); ++e) w.WriteString(vec_->env(m, e).SaveState());
    agent_->Save(w);
    const std::string path = fmt::format("{}/ckpt-{:012d}.bin", ckpt_dir_, agent_->env_steps());
    TOKENRL_RETURN_IF_ERROR(WriteCheckpointFile(path, w.bytes()));
    last_checkpoint_ = path;
    // Keep the newest keep_checkpoints up to this step. A checkpoint of a later
    // step is one that failed to verify at resume (this run went on from an
    // earlier one): superseded now that a good one is written.
    size_t kept = 0;
    for (const auto& [steps, file] : ListCheckpoints(ckpt_dir_)) {
      if (steps <= agent_->env_steps() && kept < static_cast<size_t>(config_.schedule.keep_checkpoints)) {
        ++kept;
        continue;
      }
      std::error_code ec;
      fs::remove(file, ec);
    }
    return Status::Ok();
  }

  // Loads the newest verifiable checkpoint; `resumed` stays false when none.
  Status Restore(bool& resumed) {
    for (const auto& [steps, path] : ListCheckpoints(ckpt_dir_)) {
      auto payload = ReadCheckpointFile(path);
      if (!payload.ok()) {
        // Left as it is (a rejected checkpoint changes nothing): the next
        // checkpoint this run writes supersedes it.
        std::cerr << fmt::format("tokenrl train: warning: {}; using the previous checkpoint\n",
                                 payload.status().message());
        continue;
      }
      ByteReader r(*payload);
      CheckpointHead head;
      if (!ReadHead(r, stats_, head) || head.observations.size() != obs_.size() ||
          head.env_states.size() != static_cast<size_t>(vec_->num_envs())) {
        return Status::Corruption(fmt::format("{}: checkpoint does not match this config (members, envs or game)",
                                              path));
      }
      for (int m = 0; m < members(); ++m) {
        for (int e = 0; e < vec_->envs_per_member(); ++e) {
          const size_t i = static_cast<size_t>(m * vec_->envs_per_member() + e);
          TOKENRL_RETURN_IF_ERROR(vec_->env(m, e).LoadState(head.env_states[i]).WithContext(path));
        }
      }
      obs_ = std::move(head.observations);
      TOKENRL_RETURN_IF_ERROR(agent_->Load(r).WithContext(path));
      TOKENRL_RETURN_IF_ERROR(r.Finish(path));
      last_checkpoint_ = path;
      resumed_from_ = agent_->env_steps();
      resumed = true;
      return Status::Ok();
    }
    return Status::Ok();
  }

  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
  }
  // Env steps per second, summed over members, in this process.
  double Rate(int64_t steps) const {
    const double secs = Seconds();
    return secs > 0 ? static_cast<double>((steps - start_env_steps_) * members()) / secs : 0.0;
  }

  void Progress(bool force) {
    static const bool tty = ::isatty(STDERR_FILENO) != 0;
    const double secs = Seconds();
    if (!force && secs - last_progress_ < (tty ? 0.5 : 10.0)) return;
    last_progress_ = secs;
    const int64_t steps = agent_->env_steps(), total = config_.schedule.total_env_steps;
    const double per_member = Rate(steps) / members();
    const double eta = per_member > 0 ? static_cast<double>(total - steps) / per_member : 0.0;
    double ret = 0.0;
    int counted = 0;
    for (const auto& r : stats_.recent) {
      if (r.empty()) continue;
      ret += Mean(r);
      ++counted;
    }
    const std::string line = fmt::format(
        "train {:5.1f}% {}/{} env steps/member  {:.0f} steps/s  ETA {}:{:02d}  return {}", 100.0 * steps / total,
        steps, total, Rate(steps), static_cast<int64_t>(eta) / 60, static_cast<int64_t>(eta) % 60,
        counted > 0 ? fmt::format("{:.2f}", ret / counted) : std::string("-"));
    if (tty) {
      std::cerr << "\r" << line << "\x1b[K" << std::flush;
      tty_line_ = true;
    } else {
      std::cerr << line << "\n";
    }
  }

  StatusOr<TrainSummary> Finish() {
    TrainSummary summary;
    summary.env_steps = agent_->env_steps();
    summary.gradient_updates = agent_->gradient_updates();
    summary.resumed_from_env_steps = resumed_from_;
    summary.eval_return_mean = stats_.eval_mean;
    for (const auto& r : stats_.recent) summary.return_mean_recent.push_back(Mean(r));
    summary.seconds = Seconds();
    nlohmann::json j;
    j["env_steps"] = summary.env_steps;
    j["gradient_updates"] = summary.gradient_updates;
    j["members"] = members();
    j["episodes"] = stats_.episodes;
    j["return_mean_recent"] = nlohmann::json::array();
    j["eval_return_mean"] = nlohmann::json::array();
    for (size_t m = 0; m < summary.return_mean_recent.size(); ++m) {
      j["return_mean_recent"].push_back(JsonNum(summary.return_mean_recent[m]));
      j["eval_return_mean"].push_back(JsonNum(summary.eval_return_mean[m]));
    }
    j["resumed_from_env_steps"] = resumed_from_;
    j["seconds_this_process"] = summary.seconds;
    j["env_steps_per_s_per_member"] = Rate(summary.env_steps) / members();
    j["final_checkpoint"] = last_checkpoint_;
    TOKENRL_RETURN_IF_ERROR(WriteFileAtomic(dir_ + "/summary.json", j.dump(2) + "\n"));
    TOKENRL_RETURN_IF_ERROR(WriteFileAtomic(dir_ + "/DONE", fmt::format("env_steps={}\n", summary.env_steps)));
    FsyncPath(dir_, /*directory=*/true);
    return summary;
  }

  TrainConfig config_;
  std::string dir_, ckpt_dir_;
  TrainOptions options_;
  RunStats stats_;
  std::string resolved_toml_;
  std::unique_ptr<env::VectorEnv> vec_;
  std::unique_ptr<agents::Agent> agent_;
  std::vector<uint8_t> obs_;  // The observations actions are chosen on ([M, N, C, H, W]).
  std::vector<int32_t> actions_;
  std::FILE* metrics_ = nullptr;
  std::FILE* diagnostics_ = nullptr;
  std::FILE* interventions_ = nullptr;
  std::string last_checkpoint_;
  int64_t start_env_steps_ = 0, resumed_from_ = 0;
  int64_t experts_ = 0;  // Experts of the network (0: not a MoE).
  std::chrono::steady_clock::time_point start_time_;
  double last_progress_ = 0.0;
  bool tty_line_ = false;
};

}  // namespace

StatusOr<TrainSummary> RunTraining(TrainConfig config, const std::string& out_dir, bool resume,
                                   const TrainOptions& options) {
  TOKENRL_RETURN_IF_ERROR(config.Validate());
  config.ResolveSeeds();
  Trainer trainer(std::move(config), out_dir, options);
  return trainer.Run(resume);
}

StatusOr<EvalResult> EvaluateCheckpoint(const std::string& checkpoint_file, int64_t episodes, uint64_t seed) {
  TOKENRL_ASSIGN_OR_RETURN(std::string payload, ReadCheckpointFile(checkpoint_file));
  ByteReader r(payload);
  std::string config_toml;
  if (!r.ReadString(config_toml)) return Status::Corruption(fmt::format("{}: no config", checkpoint_file));
  TOKENRL_ASSIGN_OR_RETURN(TrainConfig config, ParseConfigText(config_toml));
  ByteReader head_reader(payload);
  RunStats stats(static_cast<int>(config.vector_env.members));
  CheckpointHead head;
  if (!ReadHead(head_reader, stats, head)) {
    return Status::Corruption(fmt::format("{}: malformed checkpoint", checkpoint_file));
  }
  TOKENRL_ASSIGN_OR_RETURN(auto env, env::MakeEnvironment(config.env));
  TOKENRL_ASSIGN_OR_RETURN(auto agent, MakeAgent(config, env->spec()));
  TOKENRL_RETURN_IF_ERROR(agent->Load(head_reader).WithContext(checkpoint_file));
  TOKENRL_RETURN_IF_ERROR(head_reader.Finish(checkpoint_file));
  EvalResult result;
  result.env_steps = agent->env_steps();
  TOKENRL_ASSIGN_OR_RETURN(result.returns,
                           Evaluate(config, *agent, episodes > 0 ? episodes : config.schedule.eval_episodes, seed));
  for (const auto& rs : result.returns) {
    double sum = 0.0;
    for (double x : rs) sum += x;
    result.return_mean.push_back(sum / static_cast<double>(rs.size()));
  }
  return result;
}

}  // namespace tokenrl::runner
