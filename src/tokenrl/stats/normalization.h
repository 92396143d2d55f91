#pragma once
// Score normalization: maps raw returns to a scale where 0 is a baseline
// (random play) and 1 a reference (human level, or a published agent), so
// that scores of different games can be aggregated:
//
//   normalized = (raw - low) / (high - low)
//
//  - Atari: low = random, high = average human (data/reference_scores/
//    atari_human_random.csv; 57 games, the MuZero/rliable table).
//  - MinAtar: low = uniform-random policy, high = MinAtar's published DQN
//    return after 5M frames (data/reference_scores/minatar_normalization.csv).
//  - Min/max: one low/high pair given by the user for every task.
//  - None: scores are used as they are.
//
// Task names are matched through CanonicalTaskKey, so "Pong", "pong",
// "ALE/Pong-v5", "PongNoFrameskip-v4", "minatar/space_invaders" and
// "SpaceInvaders" find their rows.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/stats/score_matrix.h"

namespace tokenrl::stats {

enum class NormalizationKind { kNone, kAtari, kMinAtar, kMinMax };

// "none", "atari", "minatar", "minmax".
std::string_view NormalizationKindName(NormalizationKind kind);
// Inverse of NormalizationKindName (case-insensitive; "human" is accepted for
// "atari"). Errors (InvalidArgument): unknown name, listing the valid ones.
StatusOr<NormalizationKind> ParseNormalizationKind(std::string_view name);

// The key task names are matched by: the part after the last '/' or ':',
// without a "-v<digits>" version suffix and without a trailing "NoFrameskip"
// or "Deterministic", lower-cased, keeping only letters and digits.
// E.g. "ALE/MontezumaRevenge-v5" -> "montezumarevenge".
std::string CanonicalTaskKey(std::string_view task);

// File names of the shipped reference tables.
inline constexpr std::string_view kAtariReferenceFile = "atari_human_random.csv";
inline constexpr std::string_view kMinAtarReferenceFile = "minatar_normalization.csv";

// Locates a shipped reference table `file_name`, first match wins:
//  1. `explicit_path` when non-empty (a path to the CSV itself; an error if it
//     does not exist -- no fallback then);
//  2. $TOKENRL_DATA_DIR/reference_scores/<file_name>;
//  3. <source tree>/data/reference_scores/<file_name> (TOKENRL_SOURCE_DIR);
//  4. <install prefix>/share/tokenrl/reference_scores/<file_name>
//     (TOKENRL_DATA_INSTALL_DIR).
// Errors (NotFound): no candidate exists; the message lists every path tried
// and how to point tokenrl at the file.
StatusOr<std::string> FindReferenceScoresFile(std::string_view file_name, std::string_view explicit_path = "");

// One task's normalization anchors (raw score units).
struct TaskReference {
  std::string task;  // As written in the reference table.
  double low = 0.0;  // Maps to 0 (random).
  double high = 1.0; // Maps to 1 (human / reference).
};

class Normalizer {
 public:
  // Identity: scores pass through unchanged.
  static Normalizer None();
  // The same (min, max) for every task. Errors (InvalidArgument): non-finite
  // values or min == max.
  static StatusOr<Normalizer> MinMax(double min, double max);
  // A per-task table from a CSV with a header naming a task column (`game` or
  // `task`), a `random` column (low) and a `human` or `reference` column
  // (high). Errors: unreadable file; missing columns; a non-numeric or
  // non-finite value; a duplicate task; random == human for some task.
  static StatusOr<Normalizer> FromCsv(const std::string& path, NormalizationKind kind);
  // Atari human/random and MinAtar random/reference tables, located with
  // FindReferenceScoresFile(…, csv_path). Errors: as FindReferenceScoresFile
  // and FromCsv.
  static StatusOr<Normalizer> Atari(std::string_view csv_path = "");
  static StatusOr<Normalizer> MinAtar(std::string_view csv_path = "");

  NormalizationKind kind() const { return kind_; }
  // The reference file the table came from ("" for none/minmax).
  const std::string& source() const { return source_; }
  // The anchors for `task`, or nullopt when the table has no such task (always
  // found for none/minmax; none reports low 0, high 1).
  std::optional<TaskReference> Find(std::string_view task) const;

  // Normalizes every cell of `raw` by its task's anchors, keeping labels.
  // Errors (NotFound): tasks without a reference row; the message lists them,
  // the known tasks, and the alternatives (--normalize none, --min/--max).
  StatusOr<ScoreMatrix> Normalize(const ScoreMatrix& raw) const;

  // Caveats for this normalization on these tasks (e.g. Atari Defender and
  // Surround, which rliable's and Dopamine's 55-game aggregates leave out).
  std::vector<std::string> Warnings(const ScoreMatrix& raw) const;

 private:
  Normalizer() = default;

  NormalizationKind kind_ = NormalizationKind::kNone;
  std::string source_;
  double min_ = 0.0;
  double max_ = 1.0;
  std::vector<TaskReference> table_;
  std::vector<std::string> keys_;  // CanonicalTaskKey of table_[i].task.
};

}  // namespace tokenrl::stats
