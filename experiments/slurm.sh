#!/usr/bin/env bash
# The Slurm executor (docs/scale.md): one Slurm job per experiment, each writing its own
# database shard, then the shards merged into the main database.
#
#   slurm.sh RUNNER QUERY TASK_SCRIPT SPEC... [flags]
#
# run_specs.sh and nightly.sh call it for --executor=slurm. Its own flags:
#   --db=PATH         the main database the shards are merged into (default
#                     <workspace>/results/mpqbench.db); the jobs never open it;
#   --shards=DIR      where each experiment's shard lives, <DIR>/<experiment>.db, and the
#                     submissions' job directories, <DIR>/jobs/ (default <workspace>/results/shards);
#                     on a cluster it must be on a filesystem the nodes share;
#   --sbatch=OPTIONS  options for every sbatch (e.g. "--partition=gpu --account=lab"),
#                     after the experiment's own resources (<spec>.slurm: experiment(slurm = ...));
#   --slurm_wait=false  submit and return (default: wait, merge, summarise);
#   --slurm_poll=S    seconds between queue polls while waiting (default 15).
# Every other flag goes to experiments/run in each job (--epochs, --data_dir, --force, ...).
#
# Re-runnable: a shard keeps its experiment's runs, so a job of a finished run is a cache
# hit and one of an interrupted run resumes from the checkpoint next to the shard. A new
# shard first gets the main database's finished runs of its experiment (query merge
# --names --finished_only), so runs made outside Slurm are cache hits too. Jobs are
# submitted with --requeue: when Slurm preempts or requeues one, the runner gets SIGTERM,
# checkpoints, marks the run interrupted, and the requeued job resumes it (--force is
# dropped on a restart, so a requeue never starts a run over). An experiment whose job
# from an earlier submission is still queued or running is not submitted again.
#
# Exit status: 0 every experiment finished (or was submitted, with --slurm_wait=false);
# 1 a run failed or a job ended without an exit status; 2 bad arguments or sbatch
# refused; 4 a run is interrupted (resumable: submit again).
set -uo pipefail
runner="$1"; query="$2"; task_script="$3"
shift 3
die() { echo "slurm executor: $*" >&2; exit 2; }
abspath() { [[ "$1" == /* ]] && echo "$1" || echo "$ws/$1"; }

specs=()
while [[ $# -gt 0 && "$1" != -* ]]; do specs+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift; done
ws="${BUILD_WORKSPACE_DIRECTORY:-$PWD}"
db="$ws/results/mpqbench.db"
shards="$ws/results/shards"
sbatch_opts=() runner_flags=()
wait_jobs=true poll=15
for a in "$@"; do
  case "$a" in
    --executor=*) ;;
    --db=*) db=$(abspath "${a#--db=}") ;;
    --shards=*) shards=$(abspath "${a#--shards=}") ;;
    --sbatch=*) read -r -a more <<<"${a#--sbatch=}"; sbatch_opts+=("${more[@]}") ;;
    --slurm_wait | --slurm_wait=true) wait_jobs=true ;;
    --slurm_wait=false | --noslurm_wait) wait_jobs=false ;;
    --slurm_wait=*) die "--slurm_wait=${a#--slurm_wait=}: expected true or false" ;;
    --slurm_poll=*)
      poll="${a#--slurm_poll=}"
      [[ "$poll" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--slurm_poll=$poll: expected seconds (a number)" ;;
    --spec=*) die "$a: give spec files as arguments under --executor=slurm" ;;
    *) runner_flags+=("$a") ;;
  esac
done
((${#specs[@]} > 0)) || die "no spec files given"
for cmd in sbatch squeue; do
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found: --executor=slurm needs Slurm's client commands (Debian: slurm-client)"
done

# One experiment per name: the shard is <name>.db.
names=()
declare -A spec_of=()
for f in "${specs[@]}"; do
  [[ -f "$f" ]] || die "$f: no such spec file"
  name=$(basename "$f" .json)
  if [[ -n "${spec_of[$name]+x}" ]]; then
    cmp -s "$f" "${spec_of[$name]}" && continue
    die "two different specs are named $name (${spec_of[$name]}, $f); a shard is one experiment's"
  fi
  [[ "$name" =~ ^[A-Za-z0-9_.+-]+$ ]] || die "$f: the experiment name '$name' is not a safe file name"
  spec_of[$name]="$f"
  names+=("$name")
done

mkdir -p "$shards/jobs" || die "cannot create $shards/jobs"
jobdir="$shards/jobs/$(date -u +%Y%m%dT%H%M%SZ)-$$"
mkdir -p "$jobdir/specs" "$jobdir/logs" "$jobdir/rc" || die "cannot create $jobdir"
# The jobs run this submission's binary and specs, whatever is rebuilt while they queue.
cp "$runner" "$jobdir/run" && cp "$task_script" "$jobdir/task.sh" && chmod +x "$jobdir/run" "$jobdir/task.sh" ||
  die "cannot copy the runner into $jobdir"
printf '%s\n' "${runner_flags[@]+"${runner_flags[@]}"}" > "$jobdir/runner_flags"
echo "$shards" > "$jobdir/shards_dir"

# Skip what is still in the queue from an earlier submission; seed new shards.
# <shards>/<name>.job: "<array job id>_<index> <job directory>" of its latest job.
queued_ids=" $(squeue -h -r -o '%i' 2>/dev/null | tr '\n' ' ') "
todo=() job_ids=()
declare -A job_of=() dir_of=()
for name in "${names[@]}"; do
  if [[ -f "$shards/$name.job" ]]; then
    read -r prev prev_dir < "$shards/$name.job" || true
    if [[ -n "${prev:-}" && "$queued_ids" == *" $prev "* ]]; then
      echo "slurm executor: $name: still queued or running as job $prev; not submitted again, waited for"
      job_of[$name]="$prev" dir_of[$name]="$prev_dir"
      [[ " ${job_ids[*]-} " == *" ${prev%_*} "* ]] || job_ids+=("${prev%_*}")
      continue
    fi
  fi
  if [[ ! -f "$shards/$name.db" && -f "$db" ]]; then
    "$query" --db="$db" merge "$db" --into="$shards/$name.db" --names="$name" --finished_only >/dev/null ||
      die "cannot seed $shards/$name.db from $db"
  fi
  cp "${spec_of[$name]}" "$jobdir/specs/$name.json"
  res="${spec_of[$name]%.json}.slurm"
  if [[ -f "$res" ]]; then cp "$res" "$jobdir/specs/$name.slurm"; else : > "$jobdir/specs/$name.slurm"; fi
  todo+=("$name")
done

# One job array per distinct set of resources.
declare -A group_of=()
groups=()
for name in "${todo[@]+"${todo[@]}"}"; do
  key="resources: $(grep -v '^[[:space:]]*$' "$jobdir/specs/$name.slurm" | tr '\n' ' ')"  # never empty
  if [[ -z "${group_of[$key]+x}" ]]; then
    group_of[$key]=${#groups[@]}
    groups+=("$key")
  fi
  echo "$name" >> "$jobdir/array_${group_of[$key]}.tasks"
done

for ((g = 0; g < ${#groups[@]}; g++)); do
  tasks="$jobdir/array_$g.tasks"
  n=$(wc -l < "$tasks")
  res="${groups[$g]#resources: }"
  read -r -a res_opts <<<"$res"
  cmd=(sbatch --parsable --array="0-$((n - 1))" --job-name=mpqbench --requeue --open-mode=append
       --output="$jobdir/logs/%A_%a.log" --chdir="$ws" --export=ALL,BUILD_WORKSPACE_DIRECTORY="$ws"
       "${res_opts[@]+"${res_opts[@]}"}" "${sbatch_opts[@]+"${sbatch_opts[@]}"}" "$jobdir/task.sh" "$jobdir" "$tasks")
  echo "${cmd[*]}" > "$jobdir/array_$g.sbatch"
  out=$("${cmd[@]}" 2>&1) || die "sbatch refused array $g (${res:-no resources of its own}): $out"
  id="${out%%;*}"
  job_ids+=("$id")
  i=0
  while read -r name; do
    job_of[$name]="${id}_$i" dir_of[$name]="$jobdir"
    echo "${id}_$i $jobdir" > "$shards/$name.job"
    i=$((i + 1))
  done < "$tasks"
  res="${res% }"
  echo "slurm executor: job array $id: $n experiments ${res:+($res) }-> $jobdir"
done
((${#todo[@]} > 0)) || echo "slurm executor: nothing to submit"

merge_cmd="bazel run //results:query -- merge"
for name in "${names[@]}"; do merge_cmd+=" $shards/$name.db"; done
merge_cmd+=" --into=$db"
if [[ "$wait_jobs" != true ]]; then
  echo "slurm executor: submitted ${#todo[@]} experiments; not waiting. When the jobs are done, run this"
  echo "  command again (finished runs are cache hits, then the shards are merged), or merge them yourself:"
  echo "  $merge_cmd"
  exit 0
fi

# Wait until none of our jobs is in the queue (a requeued job goes back to pending).
if ((${#job_ids[@]} > 0)); then
  ids=$(IFS=,; echo "${job_ids[*]}")
  echo "slurm executor: waiting for job(s) $ids (squeue every ${poll} s)"
  while true; do
    left=$(squeue -h -j "$ids" -o '%i %T' 2>/dev/null) || left=""  # an error: the ids are gone
    [[ -z "$left" ]] && break
    sleep "$poll"
  done
fi

# Merge every shard of this submission, then summarise.
existing=()
for name in "${names[@]}"; do [[ -f "$shards/$name.db" ]] && existing+=("$shards/$name.db"); done
if ((${#existing[@]} > 0)); then
  "$query" --db="$db" merge "${existing[@]}" || { echo "slurm executor: merging the shards into $db failed" >&2; exit 1; }
fi
status=0
printf '\n%-44s %-12s %-14s %s\n' "experiment" "outcome" "job" "log"
for name in "${names[@]}"; do
  job="${job_of[$name]}"
  log="${dir_of[$name]}/logs/${job}.log"
  rc=$(cat "${dir_of[$name]}/rc/$name.rc" 2>/dev/null || echo none)
  case "$rc" in
    0) outcome="finished" ;;
    143 | 130) outcome="interrupted"; ((status == 0)) && status=4 ;;
    none) outcome="no status"; status=1 ;;
    *) outcome="failed ($rc)"; status=1 ;;
  esac
  printf '%-44s %-12s %-14s %s\n' "$name" "$outcome" "$job" "$log"
done
exit "$status"
