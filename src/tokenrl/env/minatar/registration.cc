#include "tokenrl/env/minatar/minatar_env.h"
#include "tokenrl/env/registry.h"

// TRANSITIONAL: games land one by one; the guards go once all five exist.
#if __has_include("tokenrl/env/minatar/asterix.h")
#include "tokenrl/env/minatar/asterix.h"
#define TOKENRL_HAVE_ASTERIX 1
#endif
#if __has_include("tokenrl/env/minatar/breakout.h")
#include "tokenrl/env/minatar/breakout.h"
#define TOKENRL_HAVE_BREAKOUT 1
#endif
#if __has_include("tokenrl/env/minatar/freeway.h")
#include "tokenrl/env/minatar/freeway.h"
#define TOKENRL_HAVE_FREEWAY 1
#endif
#if __has_include("tokenrl/env/minatar/seaquest.h")
#include "tokenrl/env/minatar/seaquest.h"
#define TOKENRL_HAVE_SEAQUEST 1
#endif
#if __has_include("tokenrl/env/minatar/space_invaders.h")
#include "tokenrl/env/minatar/space_invaders.h"
#define TOKENRL_HAVE_SPACE_INVADERS 1
#endif

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
#ifdef TOKENRL_HAVE_ASTERIX
  RegisterGame<Asterix>(registry);
#endif
#ifdef TOKENRL_HAVE_BREAKOUT
  RegisterGame<Breakout>(registry);
#endif
#ifdef TOKENRL_HAVE_FREEWAY
  RegisterGame<Freeway>(registry);
#endif
#ifdef TOKENRL_HAVE_SEAQUEST
  RegisterGame<Seaquest>(registry);
#endif
#ifdef TOKENRL_HAVE_SPACE_INVADERS
  RegisterGame<SpaceInvaders>(registry);
#endif
}

}  // namespace tokenrl::env::minatar
