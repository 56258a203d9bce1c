#!/usr/bin/env bash
# Wrapper behind experiment() targets:
#   run_specs.sh RUNNER QUERY SLURM_EXECUTOR SLURM_TASK SPEC... [-- flags for the runner]
# Spec paths are runfiles-relative (bazel run starts here in the runfiles tree).
# --executor=local (the default) runs the specs here, one after another, in one process;
# --executor=slurm submits one Slurm job per spec (experiments/slurm.sh, docs/scale.md).
set -euo pipefail
runner="$1" query="$2" slurm="$3" slurm_task="$4"
shift 4
specs=()
while [[ $# -gt 0 && "$1" != -* ]]; do
  specs+=("$(pwd)/$1")
  shift
done
executor=local
flags=()
for a in "$@"; do
  case "$a" in
    --executor=*) executor="${a#--executor=}" ;;
    *) flags+=("$a") ;;
  esac
done
case "$executor" in
  local) exec "$runner" "${flags[@]+"${flags[@]}"}" "${specs[@]}" ;;  # flags first: a path may contain commas
  slurm) exec "$slurm" "$runner" "$query" "$slurm_task" "${specs[@]}" "${flags[@]+"${flags[@]}"}" ;;
  *) echo "run_specs.sh: --executor=$executor: expected local or slurm" >&2; exit 2 ;;
esac
