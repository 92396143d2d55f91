#include "tokenrl/nn/init.h"

#include <cmath>
#include <random>
#include <sstream>

#include "tokenrl/core/seed.h"

namespace tokenrl::nn {

double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

double StandardNormal(std::mt19937_64& rng) {
  double u1;
  do {
    u1 = Uniform01(rng);
  } while (u1 <= 0.0);
  const double u2 = Uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

void StandardNormals(std::mt19937_64& rng, std::span<float> out) {
  for (size_t i = 0; i < out.size(); i += 2) {
    double u1;
    do {
      u1 = Uniform01(rng);
    } while (u1 <= 0.0);
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * M_PI * Uniform01(rng);
    out[i] = static_cast<float>(radius * std::cos(angle));
    if (i + 1 < out.size()) out[i + 1] = static_cast<float>(radius * std::sin(angle));
  }
}

void FillInit(std::span<float> out, const InitSpec& spec, uint64_t seed) {
  std::mt19937_64 rng(seed);
  switch (spec.scheme) {
    case InitScheme::kConstant:
      for (float& x : out) x = static_cast<float>(spec.value);
      return;
    case InitScheme::kUniform:
    case InitScheme::kXavierUniform: {
      const double a = spec.scheme == InitScheme::kUniform ? spec.value : std::sqrt(6.0 / (spec.fan_in + spec.fan_out));
      for (float& x : out) x = static_cast<float>((2.0 * Uniform01(rng) - 1.0) * a);
      return;
    }
    case InitScheme::kLecunNormal: {
      // Truncated at two standard deviations; 0.87962566 is the standard
      // deviation of a unit normal truncated to [-2, 2] (JAX's correction).
      const double s = std::sqrt(1.0 / spec.fan_in) / 0.87962566103423978;
      for (float& x : out) {
        double z;
        do {
          z = StandardNormal(rng);
        } while (z < -2.0 || z > 2.0);
        x = static_cast<float>(z * s);
      }
      return;
    }
  }
}

std::string RngState(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

bool SetRngState(std::mt19937_64& rng, const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 parsed;
  in >> parsed;
  if (in.fail()) return false;
  rng = parsed;
  return true;
}

uint64_t ParameterSeed(uint64_t root_seed, int member, std::string_view name) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a of the name.
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
  return DeriveSeed(root_seed, {static_cast<uint64_t>(member), h});
}

}  // namespace tokenrl::nn
