#pragma once
// ActionSet: the full or the minimal action set of a game (MinAtar, Atari).

#include <array>
#include <string_view>
#include <utility>

#include "tokenrl/config/config.h"

namespace tokenrl::env {

enum class ActionSet { kFull, kMinimal };

}  // namespace tokenrl::env

template <>
struct tokenrl::config::EnumNames<tokenrl::env::ActionSet> {
  static constexpr std::array<std::pair<tokenrl::env::ActionSet, std::string_view>, 2> kValues{
      {{tokenrl::env::ActionSet::kFull, "full"}, {tokenrl::env::ActionSet::kMinimal, "minimal"}}};
};
