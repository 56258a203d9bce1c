#!/usr/bin/env bash
# nightly: imports the published snapshot, runs every paper table's experiments, exports
# the snapshot again, then renders the report.
#   bazel run //experiments:nightly -- [--dataset_dir=cifar10=DIR,imagenet=DIR] [--db=PATH] [--out=DIR] [--threads=N]
#                                       [--snapshot=PATH | --snapshot=] [--executor=slurm [--sbatch=...]]
# The snapshot (default <workspace>/results/published/snapshot.json, results/snapshot.h)
# holds every finished run: importing it first makes its runs cache hits, so a fresh
# clone runs only what is missing; exporting it afterwards adds tonight's runs (commit
# it to publish them). --snapshot= (empty) skips both. Finished runs are cache hits,
# interrupted ones resume; experiments whose dataset is not available are listed as
# "no data" and do not fail the nightly. --executor=slurm runs the experiments as Slurm
# jobs (experiments/slurm.sh: one shard each, merged into the database) and waits for
# them before the export and the report (docs/scale.md). A lock on <workspace>/results/nightly.lock
# keeps two nightlies from overlapping (the second exits 3 at once). Exit status: 0 all
# ran and the snapshot and report were written; 1 a run failed; 2 bad arguments, or the
# snapshot or the report failed; 3 another nightly is running.
set -uo pipefail
run="$1"
render="$2"
query="$3"
slurm="$4"
slurm_task="$5"
shift 5
tables=()
while [[ $# -gt 0 && "$1" == *.table.json ]]; do tables+=("$1"); shift; done
ws="${BUILD_WORKSPACE_DIRECTORY:-$PWD}"
snapshot="$ws/results/published/snapshot.json"
run_args=() render_args=() query_args=()
executor=local
for a in "$@"; do
  case "$a" in
    --executor=local | --executor=slurm) executor="${a#--executor=}" ;;
    --executor=*) echo "nightly: $a: expected local or slurm" >&2; exit 2 ;;
    --slurm_wait=false | --noslurm_wait) echo "nightly: $a: the nightly waits for its jobs (it merges, exports and renders after them)" >&2; exit 2 ;;
    --out=*) render_args+=("$a") ;;
    --db=*) run_args+=("$a"); render_args+=("$a"); query_args+=("$a") ;;
    --snapshot=*) snapshot="${a#--snapshot=}"; [[ -z "$snapshot" || "$snapshot" == /* ]] || snapshot="$ws/$snapshot" ;;
    *) run_args+=("$a") ;;
  esac
done
mkdir -p "$ws/results"
exec 9>"$ws/results/nightly.lock"
if ! flock -n 9; then
  echo "nightly: another nightly holds $ws/results/nightly.lock; not starting a second one" >&2
  exit 3
fi
if [[ -n "$snapshot" && -f "$snapshot" ]]; then
  "$query" "${query_args[@]}" import "$snapshot" || { echo "nightly: cannot import $snapshot" >&2; exit 2; }
fi
# The spec files of all tables, without duplicates, from each table's "experiments".
specs=()
dir="$(dirname "${tables[0]}")"
for t in "${tables[@]}"; do
  for name in $(grep -o '"name":"[^"]*"' "$t" | sed 's/"name":"\(.*\)"/\1/'); do
    f="$dir/$name.json"
    [[ -f "$f" ]] || continue   # the table's own name
    [[ " ${specs[*]-} " == *" $f "* ]] || specs+=("$f")
  done
done
echo "nightly: ${#specs[@]} experiments from ${#tables[@]} tables ($(date -u +%FT%TZ))"
if [[ "$executor" == slurm ]]; then
  "$slurm" "$run" "$query" "$slurm_task" "${specs[@]}" --skip_missing_data "${run_args[@]}"
else
  "$run" --skip_missing_data "${run_args[@]}" "${specs[@]}"
fi
run_rc=$?
snapshot_rc=0
if [[ -n "$snapshot" ]]; then
  "$query" "${query_args[@]}" export --out="$snapshot"
  snapshot_rc=$?
fi
tables_arg="$(IFS=,; echo "${tables[*]}")"
"$render" --tables="$tables_arg" "${render_args[@]}"
render_rc=$?
if [[ $run_rc -ne 0 ]]; then
  echo "nightly: a run failed (exit $run_rc); the report shows it" >&2
  exit 1
fi
[[ $render_rc -eq 0 ]] || { echo "nightly: the report failed (exit $render_rc)" >&2; exit 2; }
[[ $snapshot_rc -eq 0 ]] || { echo "nightly: exporting $snapshot failed (exit $snapshot_rc)" >&2; exit 2; }
echo "nightly: done"
