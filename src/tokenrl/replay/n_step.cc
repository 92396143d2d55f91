#include "tokenrl/replay/n_step.h"

namespace tokenrl::replay {

Status NStepConfig::Validate() const {
  if (n < 1) return Status::InvalidArgument(fmt::format("n-step: n must be >= 1, got {}", n));
  if (!(gamma >= 0.0 && gamma <= 1.0)) {
    return Status::InvalidArgument(fmt::format("n-step: gamma must be in [0, 1], got {}", gamma));
  }
  return Status::Ok();
}

NStepAccumulator::NStepAccumulator(const NStepConfig& config) : config_(config) {
  const Status status = config.Validate();
  TOKENRL_CHECK(status.ok(), "{}", status.message());
}

NStepTransition NStepAccumulator::MakeTransition(size_t start) const {
  NStepTransition t;
  t.first_id = window_[start].id;
  t.last_id = window_.back().id;
  t.action = window_[start].action;
  t.steps = static_cast<int>(window_.size() - start);
  // scale runs through gamma^0 .. gamma^steps by repeated products.
  double scale = 1.0;
  for (size_t k = start; k < window_.size(); ++k) {
    t.reward += scale * window_[k].reward;
    scale *= config_.gamma;
  }
  t.discount = window_.back().terminated ? 0.0 : scale;  // scale == gamma^steps here.
  return t;
}

int NStepAccumulator::Push(const StepRecord& step, std::vector<NStepTransition>* out) {
  window_.push_back(step);
  if (step.terminated || step.truncated) {
    const int emitted = pending();
    for (size_t start = 0; start < window_.size(); ++start) out->push_back(MakeTransition(start));
    window_.clear();
    return emitted;
  }
  if (pending() < config_.n) return 0;
  out->push_back(MakeTransition(0));
  window_.pop_front();
  return 1;
}

void NStepAccumulator::Save(ByteWriter& writer) const {
  writer.Write<int32_t>(config_.n);
  writer.Write<double>(config_.gamma);
  writer.Write<uint64_t>(window_.size());
  for (const StepRecord& s : window_) {
    writer.Write(s.id);
    writer.Write(s.action);
    writer.Write(s.reward);
    writer.Write<uint8_t>(s.terminated);
    writer.Write<uint8_t>(s.truncated);
  }
}

Status NStepAccumulator::Load(ByteReader& reader) {
  int32_t n = 0;
  double gamma = 0.0;
  uint64_t count = 0;
  if (!reader.Read(n) || !reader.Read(gamma) || !reader.Read(count)) {
    return Status::Corruption("NStepAccumulator: truncated state");
  }
  if (n != config_.n || gamma != config_.gamma) {
    return Status::Corruption(fmt::format("NStepAccumulator: saved n={} gamma={} != configured n={} gamma={}", n,
                                          gamma, config_.n, config_.gamma));
  }
  if (count >= static_cast<uint64_t>(config_.n)) {
    return Status::Corruption(fmt::format("NStepAccumulator: {} pending steps for n={}", count, config_.n));
  }
  std::deque<StepRecord> window;
  for (uint64_t i = 0; i < count; ++i) {
    StepRecord s;
    uint8_t terminated = 0, truncated = 0;
    if (!reader.Read(s.id) || !reader.Read(s.action) || !reader.Read(s.reward) || !reader.Read(terminated) ||
        !reader.Read(truncated)) {
      return Status::Corruption("NStepAccumulator: truncated state");
    }
    // A pending step is never an episode end: ends flush the window.
    if (terminated != 0 || truncated != 0) return Status::Corruption("NStepAccumulator: pending episode end");
    window.push_back(s);
  }
  window_ = std::move(window);
  return Status::Ok();
}

}  // namespace tokenrl::replay
