#!/usr/bin/env bash
# A real single-node Slurm for tests, without systemd or root (see
# ../shared/docs/slurm_local.md for the pitfalls this follows):
#   tests/cli/slurm_local.sh CMD ARGS...
# starts munged (own key and socket), slurmctld and slurmd (proctrack/linuxproc,
# task/none, SlurmUser = this user, random ports on 127.0.0.1) in a temp dir,
# runs CMD with SLURM_CONF exported, then shuts everything down by PID and
# removes the temp dir. Exit: CMD's status; 77 when the Slurm or munge
# binaries are missing; 1 when the cluster does not come up.
# Environment: SLURM_LOCAL_CPUS (declared CPUs, default 4), SLURM_LOCAL_TIMEOUT
# (seconds for the whole run, default 120), SLURM_LOCAL_KEEP=1 keeps the dir.
set -u

for b in slurmctld slurmd sbatch squeue scontrol sinfo scancel munged munge unmunge mungekey; do
  if ! command -v "$b" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$b ]]; then
    echo "slurm_local: $b not installed" >&2
    exit 77
  fi
done
export PATH="$PATH:/usr/sbin"

CPUS=${SLURM_LOCAL_CPUS:-4}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-120}
# Do not leak an outer Slurm job's settings into the private cluster.
while IFS='=' read -r name _; do
  case "$name" in SLURM_*|SBATCH_*|SALLOC_*|SRUN_*) [[ $name == SLURM_LOCAL_* ]] || unset "$name" ;; esac
done < <(env)

TMP=$(mktemp -d /tmp/slurm-local.XXXXXX)
chmod 755 "$TMP"
mkdir -p "$TMP/munge" "$TMP/munge-run" "$TMP/log" "$TMP/state" "$TMP/spool" "$TMP/run"
chmod 700 "$TMP/munge"
chmod 755 "$TMP/munge-run"
USER_NAME=$(id -un)
HOST=$(hostname -s)
SOCK="$TMP/munge-run/munge.socket"
PIDS=()
STATUS=1

teardown() {
  trap - EXIT INT TERM
  if [[ -n ${SLURM_CONF:-} && -f ${SLURM_CONF:-} ]]; then
    scancel -u "$USER_NAME" >/dev/null 2>&1 || true
    scontrol shutdown >/dev/null 2>&1 || true
  fi
  # Wait for slurmd / slurmctld (children of this script), then TERM/KILL.
  for pid in "${PIDS[@]:1}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$pid" 2>/dev/null; sleep 0.2; kill -KILL "$pid" 2>/dev/null
  done
  # Stray slurmstepd and job processes carry this run's marker in their environment.
  for sig in TERM KILL; do
    for p in /proc/[0-9]*; do
      pid=${p#/proc/}
      [[ $pid == "$$" ]] && continue
      if { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qx "SLURM_LOCAL_INSTANCE=$TMP"; then
        kill -"$sig" "$pid" 2>/dev/null
      fi
    done
    sleep 0.5
  done
  [[ ${#PIDS[@]} -gt 0 ]] && kill -TERM "${PIDS[0]}" 2>/dev/null
  wait 2>/dev/null
  if [[ ${SLURM_LOCAL_KEEP:-0} == 1 ]]; then echo "slurm_local: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$STATUS"
}
trap teardown EXIT
trap 'STATUS=130; exit' INT
trap 'STATUS=143; exit' TERM

fail() {
  echo "slurm_local: $*" >&2
  for f in "$TMP"/log/*; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
  STATUS=1
  exit 1
}

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    ss -ltn 2>/dev/null | awk '{print $4}' | grep -q ":$p\$" || { echo "$p"; return; }
  done
}

mungekey --create --keyfile="$TMP/munge/munge.key" >/dev/null 2>&1 || fail "mungekey failed"
chmod 400 "$TMP/munge/munge.key"
setpriv --pdeathsig TERM munged -F --socket="$SOCK" --key-file="$TMP/munge/munge.key" \
  --pid-file="$TMP/munge-run/munged.pid" --seed-file="$TMP/munge/munged.seed" --origin=127.0.0.1 \
  >"$TMP/log/munged.stdout" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do munge -n -S "$SOCK" 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1 && break; sleep 0.1; done
munge -n -S "$SOCK" 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1 || fail "munged did not start"

CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
while [[ $SLURMD_PORT == "$CTLD_PORT" ]]; do SLURMD_PORT=$(free_port); done
cat >"$TMP/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$USER_NAME
SlurmdUser=$USER_NAME
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
ReturnToService=2
MpiDefault=none
StateSaveLocation=$TMP/state
SlurmdSpoolDir=$TMP/spool
SlurmctldPidFile=$TMP/run/slurmctld.pid
SlurmdPidFile=$TMP/run/slurmd.pid
SlurmctldLogFile=$TMP/log/slurmctld.log
SlurmdLogFile=$TMP/log/slurmd.log
NodeName=node NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=4096 State=UNKNOWN
PartitionName=debug Nodes=node Default=YES MaxTime=INFINITE State=UP
EOF
echo "CgroupPlugin=autodetect" >"$TMP/cgroup.conf"
: >"$TMP/plugstack.conf"
export SLURM_CONF="$TMP/slurm.conf"

SLURM_LOCAL_INSTANCE="$TMP" setpriv --pdeathsig TERM slurmctld -D -f "$SLURM_CONF" \
  >"$TMP/log/slurmctld.stdout" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
scontrol ping 2>/dev/null | grep -q UP || fail "slurmctld did not answer"
SLURM_LOCAL_INSTANCE="$TMP" setpriv --pdeathsig TERM slurmd -D -N node -f "$SLURM_CONF" \
  >"$TMP/log/slurmd.stdout" 2>&1 &
PIDS+=($!)
for _ in $(seq 150); do
  state=$(sinfo -h -n node -o %T 2>/dev/null)
  [[ $state == idle ]] && break
  case "$state" in *drain*|*invalid*|*fail*) fail "node is $state" ;; esac
  sleep 0.1
done
[[ $(sinfo -h -n node -o %T 2>/dev/null) == idle ]] || fail "node did not become idle"

export SLURM_LOCAL_INSTANCE="$TMP" SLURM_LOCAL_DIR="$TMP"
timeout --kill-after=5 "$TIMEOUT" "$@"
STATUS=$?
unset SLURM_LOCAL_INSTANCE
exit "$STATUS"
