#!/usr/bin/env bash
# Wrapper behind experiment() targets: run_specs.sh RUNNER SPEC... [-- flags for the runner]
# Spec paths are runfiles-relative (bazel run starts here in the runfiles tree).
set -euo pipefail
runner="$1"
shift
specs=()
while [[ $# -gt 0 && "$1" != -* ]]; do
  specs+=("$(pwd)/$1")
  shift
done
# Flags first, then the spec files as arguments (a path may contain commas).
exec "$runner" "$@" "${specs[@]}"
