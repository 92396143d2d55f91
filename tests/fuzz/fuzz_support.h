#pragma once
// Shared pieces of the fuzz targets (tests/fuzz/*_fuzz.cc; docs/hardening.md).
//
// Each target defines LLVMFuzzerTestOneInput. Built with clang and
// -DTOKENRL_BUILD_FUZZERS=ON it links libFuzzer (scripts/fuzz.sh runs it for a
// bounded time); in the ordinary build it links replay_main.cc instead and
// ctest replays the committed corpus (tests/fuzz/corpus/<target>/) through it,
// so every input that once mattered stays a regression test.
//
// A target states its contract with Require(): a violated contract prints the
// reason and aborts, which libFuzzer reports as a crash with the input saved.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "tokenrl/core/serialization.h"
#include "tokenrl/core/status.h"

namespace tokenrl::fuzz {

// Aborts with `what` unless `condition` holds.
void Require(bool condition, std::string_view what);

// The state bytes a state-loading target feeds to Load, made from the fuzz
// input and a valid state of the object under test. The first input byte picks
// how (mod 3):
//   0: the rest of the input, raw (garbage, truncations of nothing);
//   1: the valid state with edits: every 6 following bytes are one edit
//      (u32 offset mod the state size, u8 kind, u8 value): kind mod 4 =
//      0 xor the byte, 1 write the little-endian int32 value - 128 (small and
//      negative sizes, counts, indices), 2 write a u64 of 2^(value mod 64)
//      (huge sizes), 3 write a float NaN / +inf / -inf / -1 (value mod 4);
//   2: like 1, but first truncated to (u32 of bytes 1-4) mod (size + 1).
// So libFuzzer explores near-valid states (where the interesting checks are)
// without a valid state in the corpus, which would go stale with the format.
std::string StateFromInput(std::string_view valid, const uint8_t* data, size_t size);

// The contract of every Load(ByteReader&) of tokenrl (learners, replay, agent,
// environment states): a rejected state leaves the object exactly as it was
// (its saved bytes do not change); an accepted one saves to bytes that load
// again to the same bytes, and the object then works: `exercise` runs it
// (steps, samples, updates) and must not crash or trip a sanitizer.
void CheckStateLoad(std::string_view state, const std::function<std::string()>& save,
                    const std::function<Status(std::string_view)>& load, const std::function<void()>& exercise);

}  // namespace tokenrl::fuzz
