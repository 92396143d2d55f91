#pragma once
// Weight initializers, torch-free and bit-reproducible: every backend fills
// its parameters through these functions, so that the same seed gives the
// same initial weights on every backend and every machine. Random numbers come
// from std::mt19937_64 turned into doubles with our own (portable) recipe,
// never from <random> distributions, whose output differs between libraries.
//
// Schemes (softmoe_reference.md section 1.4):
//  * xavier_uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out));
//  * lecun_normal: truncated normal on [-2s, 2s], s = sqrt(1 / fan_in) / 0.87962566;
//  * uniform: U(-a, a) with a given bound (noisy layers: 1 / sqrt(fan_in));
//  * constant: every value equal to a given constant (zeros for biases).

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>

namespace tokenrl::nn {

enum class InitScheme { kXavierUniform, kLecunNormal, kUniform, kConstant };

struct InitSpec {
  InitScheme scheme = InitScheme::kConstant;
  double fan_in = 1.0;
  double fan_out = 1.0;
  double value = 0.0;  // kUniform: the bound a; kConstant: the value.
};

// Fills `out` with values drawn from `spec`, using the stream `seed`.
void FillInit(std::span<float> out, const InitSpec& spec, uint64_t seed);

// Portable draws from a 64-bit Mersenne Twister: a 53-bit uniform in [0, 1)
// and a standard normal (Box-Muller).
double Uniform01(std::mt19937_64& rng);
double StandardNormal(std::mt19937_64& rng);
// Fills `out` with float standard normals for noisy layers: Box-Muller with
// both values of each pair used (sqrt(-2 ln u1) times cos and sin of
// 2 pi u2), so half the logarithms and uniforms of StandardNormal per value.
// An odd size leaves the last sine unused. Both backends draw noise with it.
void StandardNormals(std::mt19937_64& rng, std::span<float> out);

// A generator's full state as text (for checkpoints of noise streams), and
// back; SetRngState leaves `rng` unchanged and returns false on bad text.
std::string RngState(const std::mt19937_64& rng);
bool SetRngState(std::mt19937_64& rng, const std::string& state);

// The seed of parameter `name` of member `member` under the root seed: every
// (member, parameter) pair draws from its own stream.
uint64_t ParameterSeed(uint64_t root_seed, int member, std::string_view name);

}  // namespace tokenrl::nn
