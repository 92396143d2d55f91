#!/usr/bin/env bash
# Regenerates the MinAtar study's report (issue 13) from the committed results:
#
#   scripts/report_minatar.sh [RESULTS_DIR [OUT_DIR]]    default: results/minatar docs/results/minatar
#
# One `tokenrl report` per sweep directory (a folder of RESULTS_DIR holding the sweep.toml that
# `tokenrl sweep` copies there) into OUT_DIR/<folder>/, over finished runs only (--only-done), each
# run scored as the paper does: the mean training return over the last 10% of its env steps
# (--final-fraction 0.1). The probability of improvement is reported for the figure's key pairs
# (below), over the games both variants of a pair finished (the report names them where that is
# not all of either's); pairs with no such game are listed as skipped.
# OUT_DIR/README.md (the discussion) is not touched. TOKENRL names the binary (default build/tokenrl).
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${1:-results/minatar}
OUT=${2:-docs/results/minatar}
TOKENRL=${TOKENRL:-build/tokenrl}
[[ -x $TOKENRL ]] || { echo "report_minatar: no tokenrl binary at $TOKENRL (build it: scripts/setup.sh run)" >&2; exit 2; }
[[ -d $RESULTS ]] || { echo "report_minatar: no results directory $RESULTS" >&2; exit 2; }

# The paper's key pairs "X:Y" (P(X > Y)) per sweep name (the `name` of configs/paper/*.toml).
pairs_of() {
  case "$1" in
    fig01_13_14_minatar_rainbow)
      echo softmoe_4:baseline softmoe_4:baseline_x4 softmoe_1_scaled_x4:softmoe_4 softmoe_1_scaled_x4:baseline_x4 ;;
    fig05_minatar_rainbow_lite*)
      local agg tok
      for agg in sum mean; do
        for tok in per_conv per_feat; do
          echo "tokenized_${agg}_${tok}:baseline tokenized_${agg}_${tok}_x4:baseline_x4"
        done
      done
      echo tokenized_sum_per_conv:tokenized_sum_per_feat tokenized_sum_per_conv_x4:tokenized_sum_per_feat_x4 ;;
    fig06_minatar_rainbow)
      echo softmoe_1_scaled_x4:softmoe_4 expertchoice_1_scaled_x4:softmoe_4 ;;
    fig07_minatar_rainbow)
      echo softmoe_1_per_conv:softmoe_1_shuffled softmoe_1_scaled_x4_per_conv:softmoe_1_scaled_x4_shuffled \
           softmoe_1_per_conv:softmoe_1_per_feat ;;
    fig10_minatar_dqn | fig10_minatar_der)
      echo softmoe_4:baseline softmoe_1_scaled_x4:baseline softmoe_1_scaled_x4:softmoe_4 ;;
  esac
}

# The games a variant finished ("asterix breakout ..."), from its job directories <game>-s<seeds>-<hash>/DONE.
done_games() {
  local d
  for d in "$1"/*/DONE; do
    if [[ -e $d ]]; then basename "$(dirname "$d")" | sed 's/-s[0-9].*$//'; fi
  done | sort -u | tr '\n' ' ' | sed 's/ $//'
}

status=0
found=0
for sweep in "$RESULTS"/*/; do
  sweep=${sweep%/}
  [[ -f $sweep/sweep.toml ]] || continue
  found=1
  folder=$(basename "$sweep")
  name=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' "$sweep/sweep.toml" | head -1)
  if ! compgen -G "$sweep/*/*/DONE" >/dev/null; then
    echo "== $folder ($name): no finished run yet, skipped"
    continue
  fi
  args=()
  for pair in $(pairs_of "$name"); do
    x=${pair%%:*} y=${pair#*:}
    gx=$(done_games "$sweep/$x") gy=$(done_games "$sweep/$y")
    common=$(comm -12 <(tr ' ' '\n' <<<"$gx" | sed '/^$/d') <(tr ' ' '\n' <<<"$gy" | sed '/^$/d') | tr '\n' ' ')
    if [[ -z $common ]]; then
      echo "== $folder: pair $x > $y skipped (no game both finished; $x: ${gx:-none}; $y: ${gy:-none})"
      continue
    fi
    args+=(--pair "$pair")
    if [[ $gx != "$gy" ]]; then
      echo "== $folder: pair $x > $y over the games both finished only: ${common% }"
    fi
  done
  echo "== $folder ($name): tokenrl report -> $OUT/$folder"
  if ! "$TOKENRL" report "$sweep" --out "$OUT/$folder" --only-done --final-fraction 0.1 "${args[@]}"; then
    echo "report_minatar: the report of $sweep failed" >&2
    status=1
  fi
done
((found)) || { echo "report_minatar: no sweep directory (with sweep.toml) in $RESULTS" >&2; exit 2; }
exit $status
