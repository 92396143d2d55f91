#include "tokenrl/env/minatar/asterix.h"
#include "tokenrl/env/minatar/breakout.h"
#include "tokenrl/env/minatar/freeway.h"
#include "tokenrl/env/minatar/minatar_env.h"
#include "tokenrl/env/minatar/seaquest.h"
#include "tokenrl/env/minatar/space_invaders.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::env::minatar {
namespace {

template <typename Game>
void RegisterGame(EnvRegistry& registry) {
  registry.Register({.name = "minatar/" + std::string(Game::kName),
                     .description = std::string(Game::kDescription),
                     .factory = [](const EnvConfig& config) -> std::unique_ptr<Environment> {
                       return std::make_unique<MinatarEnvironment<Game>>(config);
                     }});
}

}  // namespace

void RegisterMinatarGames(EnvRegistry& registry) {
  RegisterGame<Asterix>(registry);
  RegisterGame<Breakout>(registry);
  RegisterGame<Freeway>(registry);
  RegisterGame<Seaquest>(registry);
  RegisterGame<SpaceInvaders>(registry);
}

}  // namespace tokenrl::env::minatar
