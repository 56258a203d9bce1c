#!/usr/bin/env bash
# One task of a Slurm job array submitted by experiments/slurm.sh (docs/scale.md):
#
#   task.sh JOBDIR TASKS_FILE      # line SLURM_ARRAY_TASK_ID + 1 of TASKS_FILE names the experiment
#
# Runs JOBDIR/run (the submission's copy of experiments/run) on JOBDIR/specs/<name>.json
# with the experiment's own shard, <shards>/<name>.db, and writes the runner's exit status
# to JOBDIR/rc/<name>.rc. On SIGTERM (preemption, requeue, the time limit; Slurm sends it
# to the runner too) the runner checkpoints and marks the run interrupted; the requeued
# task resumes it. With more than one task (experiment(slurm = dict(tasks = N))) the runner is
# started by srun as N data-parallel ranks (docs/distributed.md), rank 0 on the first node.
set -uo pipefail
jobdir="$1"; tasks="$2"
index="${SLURM_ARRAY_TASK_ID:?not in a Slurm job array}"
name=$(sed -n "$((index + 1))p" "$tasks")
[[ -n "$name" ]] || { echo "task.sh: no line $((index + 1)) in $tasks" >&2; exit 2; }
shard="$(cat "$jobdir/shards_dir")/$name.db"
restart="${SLURM_RESTART_COUNT:-0}"
flags=()
have_threads=false
while IFS= read -r f; do
  [[ -z "$f" ]] && continue
  # A restarted (requeued) job resumes its run; --force would start it over.
  [[ "$f" == "--force" && "$restart" != 0 ]] && continue
  [[ "$f" == --threads=* ]] && have_threads=true
  flags+=("$f")
done < "$jobdir/runner_flags"
# LibTorch would take every core of the node; take the job's.
if [[ "$have_threads" == false ]]; then
  cpus="${SLURM_CPUS_PER_TASK:-${SLURM_JOB_CPUS_PER_NODE%%(*}}"
  cpus="${cpus%%,*}"
  [[ "$cpus" =~ ^[0-9]+$ ]] && flags+=("--threads=$cpus")
fi
echo "== $name: job ${SLURM_ARRAY_JOB_ID:-?}_${index} (restart $restart) on $(hostname) at $(date -u +%FT%TZ), shard $shard"
cmd=("$jobdir/run" --db="$shard" "${flags[@]+"${flags[@]}"}" "$jobdir/specs/$name.json")
if [[ "${SLURM_NTASKS:-1}" -gt 1 ]]; then
  MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" 2>/dev/null | head -1)
  export MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
  if [[ -z "${MASTER_PORT:-}" ]]; then
    # From the job id, then the first port nobody listens on here (rank 0 runs on this node).
    port=$((20000 + ${SLURM_JOB_ID:-0} % 20000))
    for ((i = 0; i < 200; i++)); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
      port=$((port + 1))
    done
    export MASTER_PORT="$port"
  fi
  cmd=(srun --kill-on-bad-exit=1 "${cmd[@]}")
  echo "== $name: $SLURM_NTASKS data-parallel ranks by srun, rank 0 at $MASTER_ADDR:$MASTER_PORT"
fi
# Slurm signals every process of the job (requeue, preemption, time limit, scancel), the
# runner too. This shell only waits it out: forwarding would be a second SIGTERM, which
# takes the runner's default action (lib/runtime/interrupt.h) before it stores the run.
trap ':' TERM INT
"${cmd[@]}" &
child=$!
while true; do
  wait "$child"
  rc=$?
  kill -0 "$child" 2>/dev/null || break  # wait returned for the trap; the runner is still checkpointing
done
echo "$rc" > "$jobdir/rc/$name.rc.tmp" && mv -f "$jobdir/rc/$name.rc.tmp" "$jobdir/rc/$name.rc"
echo "== $name: exit status $rc at $(date -u +%FT%TZ)"
exit "$rc"
