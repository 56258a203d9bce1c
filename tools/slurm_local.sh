#!/usr/bin/env bash
# tools/slurm_local.sh — a real one-node Slurm cluster on localhost (Debian's slurm-wlm and
# munge, installed by tools/setup.sh), for tests and for trying the Slurm executor
# (docs/scale.md) without a cluster. Everything lives in DIR: munge's key and socket,
# slurm.conf, the controller's state, the node's spool and the daemons' logs. Nothing
# outside DIR is touched (no /etc, no system service), so several can run at once.
#
#   tools/slurm_local.sh start DIR    # prints: export SLURM_CONF=DIR/slurm.conf
#   tools/slurm_local.sh stop DIR     # stops the daemons it started in DIR
#
# The node offers this machine's cores and memory (RealMemory = MemTotal less 1 GiB).
# The daemons run as the calling user; slurmd launches jobs as that user, so it must be
# root (as in the CI container) to launch anyone's jobs; as another user start() says so.
# Keep DIR short: munge's and Slurm's unix sockets are limited to 107 characters.
set -euo pipefail

die() { echo "slurm_local.sh: $*" >&2; exit 1; }

free_port() {
  python3 - <<'EOF' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
EOF
}

start() {
  local dir="$1"
  for cmd in munged mungekey slurmctld slurmd sinfo; do
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found: install slurm-wlm and munge (tools/setup.sh)"
  done
  [[ $(id -u) -eq 0 ]] || die "slurmd launches jobs as their user and must run as root (uid $(id -u) here)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  ((${#dir} <= 80)) || die "DIR $dir is ${#dir} characters; sockets inside it need <= 80"
  mkdir -p "$dir/munge" "$dir/ctld" "$dir/spool"
  chmod 700 "$dir/munge"

  # munge: a key of our own and a socket in DIR (munged refuses group/world-writable paths).
  [[ -f "$dir/munge/munge.key" ]] || mungekey --create --keyfile="$dir/munge/munge.key" 2>/dev/null ||
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 600 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed" ||
    die "munged did not start: $(tail -3 "$dir/munge/munged.log" 2>/dev/null)"

  local host cpus mem_mb ctld_port d_port
  host=$(hostname -s)
  cpus=$(nproc)
  mem_mb=$(awk '/MemTotal/ {m = int($2 / 1024) - 1024; print (m > 512 ? m : 512)}' /proc/meminfo)
  ctld_port=$(free_port)
  d_port=$(free_port)
  while [[ "$d_port" == "$ctld_port" ]]; do d_port=$(free_port); done
  cat > "$dir/slurm.conf" <<EOF
# One-node cluster written by tools/slurm_local.sh
ClusterName=mpqbench
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=$(id -un)
SlurmctldPort=${ctld_port}
SlurmdPort=${d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${dir}/munge/socket
StateSaveLocation=${dir}/ctld
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/slurmctld.log
SlurmdLogFile=${dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
KillWait=30
# A job that asks for no memory gets its cores' share, not the whole node.
DefMemPerCPU=$((mem_mb / cpus))
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=local Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -f "$SLURM_CONF" || die "slurmctld did not start: $(tail -5 "$dir/slurmctld.log" 2>/dev/null)"
  slurmd -f "$SLURM_CONF" -N "$host" || die "slurmd did not start: $(tail -5 "$dir/slurmd.log" 2>/dev/null)"
  local i
  for ((i = 0; i < 60; i++)); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^idle'; then
      echo "export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.5
  done
  die "the node did not come up within 30 s: $(sinfo 2>&1 | tail -2); $(tail -5 "$dir/slurmd.log" 2>/dev/null)"
}

stop() {
  local dir="$1" pid f
  for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    [[ -f "$f" ]] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  # Wait for them to go (slurmd ends its job steps first), then make sure.
  for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    [[ -f "$f" ]] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [[ -n "$pid" ]] || continue
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

case "${1:-}" in
  start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
  *) die "usage: $0 start DIR | stop DIR" ;;
esac
