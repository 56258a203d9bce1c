#!/usr/bin/env bash
# Runs experiments with the programs tools/gpu/build.sh built, where there is no Bazel:
# the specs and Fashion-MNIST come from the tools/gpu/pack_deps.sh folder.
#
#   tools/gpu/run.sh DEPS_DIR NAME... [-- RUNNER_FLAGS...]
#   tools/gpu/run.sh build/gpu_deps quickstart_fp32 quickstart_w4a4 -- --device=cuda
#
# NAME is an experiment target's name (DEPS_DIR/specs/NAME.json). The results database
# and checkpoints go where `bazel run` puts them (results/ of this checkout), so
# `build/gpu/query runs` and `build/gpu/report` read them; BIN (default build/gpu)
# says where the programs are.
set -euo pipefail
deps=${1:?usage: tools/gpu/run.sh DEPS_DIR NAME... [-- RUNNER_FLAGS...]}
shift
deps=$(cd "$deps" && pwd)
cd "$(dirname "$0")/../.."
bin=${BIN:-build/gpu}
[[ -x "$bin/run" ]] || { echo "gpu/run: no $bin/run: build it with tools/gpu/build.sh" >&2; exit 2; }
specs=()
while (( $# > 0 )) && [[ "$1" != "--" ]]; do
  [[ -f "$deps/specs/$1.json" ]] || { echo "gpu/run: no spec $deps/specs/$1.json" >&2; exit 2; }
  specs+=("$deps/specs/$1.json")
  shift
done
[[ "${1:-}" == "--" ]] && shift
(( ${#specs[@]} > 0 )) || { echo "gpu/run: name at least one experiment" >&2; exit 2; }
export BUILD_WORKSPACE_DIRECTORY=$PWD
exec "$bin/run" --papers_dir=experiments/papers --dataset_dir="fashion_mnist=$deps/data/fashion-mnist" "$@" "${specs[@]}"
