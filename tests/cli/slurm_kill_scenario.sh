#!/usr/bin/env bash
# Run inside tests/cli/slurm_local.sh by SweepCliTest.SlurmTaskKilledAndRequeued:
# submits SWEEP as a Slurm array, then, mid-run (once the job has written a
# checkpoint), SIGKILLs every process of array task 0 (a crash: no clean-up)
# and requeues task 1 (a preemption). When the array has ended it re-submits
# the sweep, which must submit only what is not done, and follows it.
#   slurm_kill_scenario.sh BIN SWEEP OUT BUDGET [TIME_SCALE]
# TIME_SCALE (default 1) multiplies every wall-clock limit, for sanitized builds.
set -eu
BIN=$1 SWEEP=$2 OUT=$3 BUDGET=$4 SCALE=${5:-1}
TIME=$(printf '00:%02d:00' $((5 * SCALE)))  # Slurm time limit per array task
"$BIN" sweep "$SWEEP" --out "$OUT" --backend slurm --time "$TIME" --budget "$BUDGET" --no-follow
ARRAY=$(cat "$OUT/slurm/submit-0.jobid")
JOB0=$(sed -n 1p "$OUT/slurm/submit-0.jobs")
JOB1=$(sed -n 2p "$OUT/slurm/submit-0.jobs")

# Waits until job $1 has a checkpoint and is not done (it is mid-run).
mid_run() {
  for _ in $(seq 1 $((1200 * SCALE))); do
    if [[ -e $OUT/$1/DONE ]]; then echo "scenario: $1 finished before it could be interrupted" >&2; return 1; fi
    if compgen -G "$OUT/$1/checkpoints/ckpt-*.bin" >/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "scenario: $1 never started" >&2
  return 1
}
mid_run "$JOB0"
scancel --full --signal=KILL "${ARRAY}_0"
echo "scenario: SIGKILLed array task ${ARRAY}_0 ($JOB0)"
mid_run "$JOB1"
scontrol requeue "${ARRAY}_1"
echo "scenario: requeued array task ${ARRAY}_1 ($JOB1)"
# Slurm holds a requeued job back for a while (its begin time); let it start
# soon. Not at once: slurmd revoked the first run's credential with a
# one-second clock, and a credential issued within that second is refused
# ("Killing non-startable batch job: Job credential revoked"), which ends the
# task FAILED instead of rerunning it (seen under load in CI).
for _ in $(seq 1 100); do
  if [[ $(squeue -h -r -j "${ARRAY}_1" -o '%T %r') == "PENDING BeginTime" ]]; then
    scontrol update JobId="${ARRAY}_1" StartTime=now+3 && break
  fi
  sleep 0.1
done

for _ in $(seq 1 $((1200 * SCALE))); do
  squeue -h -r -t all -j "$ARRAY" -o '%T' | grep -qE 'PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUE' || break
  sleep 0.25
done
squeue -h -r -t all -j "$ARRAY" -o 'scenario: task %K %T' || true
"$BIN" sweep status "$OUT" || true
"$BIN" sweep "$SWEEP" --out "$OUT" --backend slurm --time "$TIME" --budget "$BUDGET"
