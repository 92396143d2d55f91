// The ALE binding (see ale_emulator.h). Compiled only with ALE.

#include "tokenrl/env/atari/ale/ale_emulator.h"

#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <ale/ale_interface.hpp>
#include <ale/version.hpp>

#include "tokenrl/core/serialization.h"

namespace tokenrl::env::atari {
namespace {

class AleEmulator final : public AtariEmulator {
 public:
  explicit AleEmulator(const EmulatorOptions& options) : options_(options), sticky_(options.repeat_action_probability) {
    ale::Logger::setMode(ale::Logger::Error);
  }

  Status LoadRom(const std::string& rom) override {
    if (!std::filesystem::is_regular_file(rom)) {
      return Status::NotFound(fmt::format("ALE: ROM file {} does not exist", rom));
    }
    auto ale = std::make_unique<ale::ALEInterface>();
    Configure(*ale, 0);
    try {
      ale->loadROM(rom);
    } catch (const std::exception& e) {
      return Status::InvalidArgument(fmt::format("ALE could not load ROM {}: {}", rom, e.what()));
    }
    if (ale->getScreen().height() <= 0 || ale->getScreen().width() <= 0) {
      return Status::InvalidArgument(fmt::format("ALE: ROM {} gave an empty screen", rom));
    }
    rom_ = rom;
    ale_ = std::move(ale);
    sticky_.Seed(0);
    grayscale_.resize(static_cast<size_t>(screen_height()) * static_cast<size_t>(screen_width()));
    return Status::Ok();
  }

  void Seed(uint32_t seed) override {
    TOKENRL_CHECK(ale_ != nullptr, "ALE: Seed before LoadRom");
    Configure(*ale_, seed);
    ale_->loadROM(rom_);  // ALE applies random_seed when it loads the ROM.
    sticky_.Seed(seed);
  }

  void ResetGame() override {
    ale_->reset_game();
    sticky_.ResetGame();
  }

  int Act(int action) override {
    TOKENRL_CHECK(action >= 0 && action < kNumAleActions, "ALE: action {} out of range", action);
    const int executed = sticky_.Apply(action);
    return static_cast<int>(ale_->act(static_cast<ale::Action>(executed)));
  }

  int screen_height() const override { return static_cast<int>(ale_->getScreen().height()); }
  int screen_width() const override { return static_cast<int>(ale_->getScreen().width()); }

  void WriteGrayscaleScreen(std::span<uint8_t> out) const override {
    TOKENRL_CHECK(out.size() == grayscale_.size(), "ALE: screen buffer has {} bytes, expected {}", out.size(),
                  grayscale_.size());
    // getScreenGrayscale writes into a vector of exactly the screen's size.
    ale_->getScreenGrayscale(grayscale_);
    std::copy(grayscale_.begin(), grayscale_.end(), out.begin());
  }

  int lives() const override { return ale_->lives(); }
  bool game_over() const override { return ale_->game_over(/*with_truncation=*/false); }
  std::vector<int> MinimalActionSet() const override { return ToInts(ale_->getMinimalActionSet()); }
  std::vector<int> FullActionSet() const override { return ToInts(ale_->getLegalActionSet()); }

  std::string SaveState() const override {
    ByteWriter writer;
    writer.WriteString("ale");
    sticky_.Save(writer);
    writer.WriteString(ale_->cloneState(/*include_rng=*/true).serialize());
    return writer.Release();
  }

  Status LoadState(std::string_view bytes) override {
    ByteReader reader(bytes);
    std::string tag, ale_state;
    StickyActions sticky = sticky_;
    if (!reader.ReadString(tag) || tag != "ale" || !sticky.Load(reader) || !reader.ReadString(ale_state) ||
        !reader.Finish("ALE state").ok() || ale_state.empty()) {
      return Status::Corruption("ALE: malformed emulator state");
    }
    try {
      ale_->restoreState(ale::ALEState(ale_state));
    } catch (const std::exception& e) {
      return Status::Corruption(fmt::format("ALE: could not restore state: {}", e.what()));
    }
    sticky_ = sticky;
    return Status::Ok();
  }

  std::unique_ptr<AtariEmulator> Clone() const override {
    auto copy = std::make_unique<AleEmulator>(options_);
    TOKENRL_CHECK(copy->LoadRom(rom_).ok(), "ALE: reloading {} for a clone failed", rom_);
    TOKENRL_CHECK(copy->LoadState(SaveState()).ok(), "ALE: restoring a clone failed");
    return copy;
  }

 private:
  static std::vector<int> ToInts(const ale::ActionVect& actions) {
    std::vector<int> ids;
    for (ale::Action a : actions) ids.push_back(static_cast<int>(a));
    return ids;
  }
  static void Configure(ale::ALEInterface& ale, uint32_t seed) {
    ale.setInt("random_seed", static_cast<int>(seed & 0x7FFFFFFF));
    ale.setInt("frame_skip", 1);
    ale.setFloat("repeat_action_probability", 0.0f);  // Sticky actions run in StickyActions.
    ale.setInt("max_num_frames_per_episode", 0);       // The protocol caps episodes.
  }

  EmulatorOptions options_;
  StickyActions sticky_;
  std::string rom_;
  std::unique_ptr<ale::ALEInterface> ale_;
  mutable std::vector<unsigned char> grayscale_;
};

}  // namespace

bool AleAvailable() { return true; }
const char* AleVersion() { return ALE_VERSION; }

StatusOr<std::unique_ptr<AtariEmulator>> MakeAleEmulator(const EmulatorOptions& options) {
  return std::unique_ptr<AtariEmulator>(std::make_unique<AleEmulator>(options));
}

}  // namespace tokenrl::env::atari
