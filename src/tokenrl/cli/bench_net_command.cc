// `tokenrl bench net`: network throughput through the Learner interface, one
// line per variant and member count:
//   bench net VARIANT E=<E> UPDATES_PER_S_PER_MEMBER ACTIONS_PER_S
// UPDATES_PER_S_PER_MEMBER: Update() calls per second on a batch of 32 per
// member (online forward, target forward, loss, backward, Adam step); every
// member receives one update per call, so this is each member's update rate.
// ACTIONS_PER_S: greedy actions per second at batch 1 per member, counting all
// members (one GreedyActions call yields E actions).
// Networks: the MinAtar encoder on MinAtar's breakout shape [4, 10, 10] with 6
// actions, the DQN Q head and MSE loss, one intra-op thread.

#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tokenrl/cli/bench_net.h"
#include "tokenrl/cli/commands.h"
#include "tokenrl/nn/learner.h"
#if defined(TOKENRL_HAVE_TORCH)
#include "tokenrl/nn/torch/torch_learner.h"
#endif

namespace tokenrl::cli {
namespace {

const std::vector<std::string> kVariants{"flatten", "tokenized-sum", "softmoe-4", "softmoe-1-scaled-x4",
                                         "expertchoice-1"};

struct BenchNetOptions {
  std::vector<std::string> backends{"auto"};
  std::string device = "cpu";
  std::vector<std::string> variants = kVariants;
  std::vector<int> members{1, 8};
  double seconds = 2.0;
  int rounds = 1;
  int64_t hidden_units = 512;
  std::string encoder = "minatar";
};

// The paper's variants adapted to MinAtar: penultimate width and expert
// width H = `hidden` (512 as on Atari by default; MinAtar's own DQN uses 128);
// PerConv tokens (100 tokens of 16).
nn::NetworkConfig VariantConfig(const std::string& variant, int64_t hidden, const std::string& encoder) {
  nn::NetworkConfig c;
  c.encoder.type = encoder == "nature"   ? nn::EncoderType::kNature
                   : encoder == "impala" ? nn::EncoderType::kImpala
                                         : nn::EncoderType::kMinatar;
  c.tokenizer.type = nn::TokenizerType::kPerConv;
  c.mixer.hidden_units = hidden;
  c.mixer.expert_hidden_units = hidden;
  if (variant == "flatten") {
    c.mixer.type = nn::MixerType::kFlatten;
  } else if (variant == "tokenized-sum") {
    c.mixer.type = nn::MixerType::kTokenizedSum;
  } else if (variant == "softmoe-4") {
    c.mixer.type = nn::MixerType::kSoftMoe;
    c.mixer.num_experts = 4;
  } else if (variant == "softmoe-1-scaled-x4") {
    c.mixer.type = nn::MixerType::kSoftMoe;
    c.mixer.num_experts = 1;
    c.mixer.expert_hidden_units = 4 * hidden;
  } else {  // expertchoice-1: one expert taking all tokens (p = T / 1).
    c.mixer.type = nn::MixerType::kExpertChoice;
    c.mixer.num_experts = 1;
  }
  return c;
}

// Sparse 0/1 grids, as MinAtar's.
std::vector<uint8_t> RandomGrids(size_t size, std::mt19937& rng) {
  std::vector<uint8_t> grids;
  grids.reserve(size);
  for (size_t i = 0; i < size; ++i) grids.push_back(rng() % 8 == 0 ? 1 : 0);
  return grids;
}

// Runs `step` repeatedly for about `seconds` (after a short warm-up); returns calls per second.
template <typename F>
double CallsPerSecond(double seconds, F&& step) {
  for (int i = 0; i < 3; ++i) step();
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  int64_t calls = 0;
  double elapsed = 0.0;
  do {
    step();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(calls) / elapsed;
}

struct Rates {
  double updates = 0.0, actions = 0.0;
};

StatusOr<Rates> BenchOne(const BenchNetOptions& options, const std::string& backend, const std::string& variant,
                         int members) {
  // MinAtar's Breakout grid, or Atari frames (4 stacked 84x84, scaled by 1/255) for Nature / Impala.
  const bool atari = options.encoder != "minatar";
  const nn::NetworkIo io{.channels = 4, .height = atari ? 84 : 10, .width = atari ? 84 : 10, .num_actions = 6,
                         .input_scale = atari ? 1.0f / 255.0f : 1.0f};
  nn::LearnerConfig config;
  config.backend = backend;
  config.device = options.device;
  config.num_threads = 1;
  config.td_loss = nn::TdLoss::kMse;
  TOKENRL_ASSIGN_OR_RETURN(std::unique_ptr<nn::Learner> learner,
                           nn::MakeLearner(VariantConfig(variant, options.hidden_units, options.encoder), config, io, members));

  constexpr int kBatch = 32;
  const size_t obs_size = static_cast<size_t>(io.channels) * io.height * io.width;
  const size_t rows = static_cast<size_t>(members) * kBatch;
  std::mt19937 rng(1);
  const std::vector<uint8_t> obs = RandomGrids(rows * obs_size, rng);
  const std::vector<uint8_t> next_obs = RandomGrids(rows * obs_size, rng);
  std::vector<int32_t> actions(rows);
  std::vector<float> returns(rows), discounts(rows, 0.99f);
  for (size_t i = 0; i < rows; ++i) {
    actions[i] = static_cast<int32_t>(rng() % io.num_actions);
    returns[i] = static_cast<float>(rng() % 3) - 1.0f;
  }
  const nn::UpdateBatch batch{kBatch, obs, actions, returns, discounts, next_obs, {}};
  nn::UpdateResult result;
  Status status;
  const double updates = CallsPerSecond(options.seconds, [&] {
    if (status.ok()) status = learner->Update(batch, result);
  });
  TOKENRL_RETURN_IF_ERROR(status);

  std::vector<int32_t> greedy(static_cast<size_t>(members));
  const std::span<const uint8_t> one_obs(obs.data(), static_cast<size_t>(members) * obs_size);
  const double acts = CallsPerSecond(options.seconds, [&] { learner->GreedyActions(one_obs, 1, false, greedy); });

  return Rates{updates, acts * members};
}

Status BenchNet(const BenchNetOptions& options) {
#if defined(TOKENRL_HAVE_TORCH)
  nn::RegisterTorchLearnerBackend();
#endif
  for (const std::string& variant : options.variants) {
    for (int members : options.members) {
      // Rounds interleave the backends; each backend keeps its best round,
      // which is robust to other load on the machine.
      std::vector<Rates> rates(options.backends.size());
      for (int round = 0; round < options.rounds; ++round) {
        for (size_t i = 0; i < options.backends.size(); ++i) {
          TOKENRL_ASSIGN_OR_RETURN(Rates r, BenchOne(options, options.backends[i], variant, members));
          rates[i].updates = std::max(rates[i].updates, r.updates);
          rates[i].actions = std::max(rates[i].actions, r.actions);
        }
      }
      for (size_t i = 0; i < options.backends.size(); ++i) {
        nn::LearnerConfig config;
        config.backend = options.backends[i];
        config.device = options.device;
        std::cout << fmt::format("bench net {} E={} {:.1f} {:.0f} backend={}", variant, members, rates[i].updates,
                                 rates[i].actions, nn::ResolvedBackend(config))
                  << std::endl;
      }
      // Ratios of every backend to the last one, from this same run.
      for (size_t i = 0; i + 1 < rates.size(); ++i) {
        std::cout << fmt::format("bench net ratio {}/{} {} E={} updates {:.2f}x actions {:.2f}x",
                                 options.backends[i], options.backends.back(), variant, members,
                                 rates[i].updates / rates.back().updates, rates[i].actions / rates.back().actions)
                  << std::endl;
      }
    }
  }
  return Status::Ok();
}

}  // namespace

void AddBenchNetCommand(CLI::App& bench, int& exit_code) {
  auto* net = bench.add_subcommand(
      "net",
      "Learner throughput of the paper's variants on the MinAtar encoder (breakout shape [4, 10, 10], 6 actions;\n"
      "DQN Q head, MSE loss; PerConv tokens: 100 of 16). Widths: the paper's Atari values carried over to\n"
      "MinAtar, penultimate Dense 512 and expert H 512 (--hidden-units; MinAtar's own DQN uses 128).\n"
      "Variants: flatten, tokenized-sum (per-token Dense(512)+ReLU, summed), softmoe-4 (4 experts),\n"
      "softmoe-1-scaled-x4 (1 expert, H 2048), expertchoice-1 (1 expert choosing all 100 tokens).\n"
      "One intra-op thread. Prints one line per variant, member count E and backend:\n"
      "  bench net VARIANT E=<E> UPDATES_PER_S_PER_MEMBER ACTIONS_PER_S backend=<name>\n"
      "and, with several --backend values, the ratios of each to the last, measured in the same run:\n"
      "  bench net ratio A/B VARIANT E=<E> updates <x> actions <x>\n"
      "UPDATES_PER_S_PER_MEMBER: updates per second of each member (batch 32 per member; online forward,\n"
      "target forward, loss, backward, Adam). ACTIONS_PER_S: greedy actions per second at batch 1 per\n"
      "member, all members counted.");
  auto options = std::make_shared<BenchNetOptions>();
  net->add_option("--backend", options->backends,
                  "Learner backend(s): auto (cpu), cpu, torch; several are measured in turn (e.g. --backend cpu torch)")
      ->capture_default_str();
  net->add_option("--device", options->device, "Device of the torch backend (cpu, cuda, cuda:N)")
      ->capture_default_str();
  net->add_option("--variant", options->variants, "Variant(s) to measure (default: all)")
      ->check(CLI::IsMember(kVariants));
  net->add_option("--members", options->members, "Member counts E (default: 1 8)")->check(CLI::Range(1, 1024));
  net->add_option("--hidden-units", options->hidden_units,
                  "Penultimate Dense width and expert H (x4 for softmoe-1-scaled-x4)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16))
      ->capture_default_str();
  net->add_option("--encoder", options->encoder,
                  "minatar (10x10 grid), or nature / impala on 84x84x4 Atari-shaped frames")
      ->check(CLI::IsMember({"minatar", "nature", "impala"}))
      ->capture_default_str();
  net->add_option("--rounds", options->rounds,
                  "Measure every backend this many times, interleaved, and report each one's best")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  net->add_option("--seconds", options->seconds, "Seconds per measurement")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  net->callback([options, &exit_code] {
    const Status st = BenchNet(*options);
    exit_code = st.ok() ? 0 : ReportError("bench net", st);
  });
}

}  // namespace tokenrl::cli
