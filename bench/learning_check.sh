#!/usr/bin/env bash
# Learning check of issue 4 (an acceptance script, not part of the test suite):
# the MinAtar DQN preset with the flatten network must reach an average
# evaluation return of at least 5 on MinAtar Breakout within 1M environment
# steps (random: 0.5; MinAtar's published DQN: about 10 at 5M frames), and a
# tokenized variant must train as stably.
#
#   bench/learning_check.sh [OUT_DIR] [ENV_STEPS] [VARIANT...]
#
# Defaults: out/learning_check, 1000000 steps, variants baseline and
# tokenized_sum_per_conv (configs/networks/), at MinAtar's DQN width (Dense 128,
# Young & Tian 2019; experts of width 128), on the default learner backend (the
# CPU engine; add e.g. LEARNER_BACKEND=torch to compare). Needs a built tokenrl
# (scripts/setup.sh). Runs are resumable: rerunning continues them.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${TOKENRL_BUILD_DIR:-build}
OUT=${1:-out/learning_check}
STEPS=${2:-1000000}
shift $(( $# > 2 ? 2 : $# ))
VARIANTS=("$@")
if ((${#VARIANTS[@]} == 0)); then VARIANTS=(baseline tokenized_sum_per_conv); fi

status=0
for variant in "${VARIANTS[@]}"; do
  dir="$OUT/$variant/breakout"
  if [[ -f $dir/DONE ]]; then
    echo "learning_check: $variant already done in $dir"
  elif [[ -f $dir/config.resolved.toml ]]; then
    "$BUILD_DIR/tokenrl" train --resume "$dir"
  else
    "$BUILD_DIR/tokenrl" train --config configs/agents/minatar_dqn.toml --config configs/encoders/minatar.toml \
      --config "configs/networks/$variant.toml" --set env.name=minatar/breakout \
      --set network.mixer.hidden_units=128 --set network.mixer.expert_hidden_units=128 \
      --set schedule.total_env_steps="$STEPS" --set schedule.eval_every_env_steps=50000 \
      --set schedule.eval_episodes=30 --set learner.backend="${LEARNER_BACKEND:-auto}" --out "$dir"
  fi
  # Best evaluation return over the run (metrics.csv column 9: eval_return_mean).
  best=$(awk -F, 'NR > 1 && $9 != "" { if ($9 > best) best = $9 } END { printf "%.2f", best + 0 }' "$dir/metrics.csv")
  final=$(awk -F, 'NR > 1 && $9 != "" { last = $9 } END { printf "%.2f", last + 0 }' "$dir/metrics.csv")
  verdict=$(awk -v b="$best" 'BEGIN { print (b >= 5.0) ? "PASS" : "FAIL" }')
  echo "learning_check $variant: best eval return $best, final $final over $STEPS env steps: $verdict (threshold 5)"
  [[ $verdict == PASS ]] || status=1
done
exit $status
