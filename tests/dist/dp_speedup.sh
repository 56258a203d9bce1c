#!/usr/bin/env bash
# Data-parallel speed-up on this machine (docs/scale.md), in one run: the leaderboard's
# W2A2 ResNet-20 training step at global batch 128 (tests/dist/dp_step_benchmark.cc) as
# - the baseline: 1 process with every core as LibTorch threads,
# - 1 process with 1 thread,
# - WORLD ranks of 1 thread each, on loopback through c10d's Gloo,
# then the ratio of the baseline's step time to the ranks'. Needs an otherwise idle machine.
#
#   bazel run //tests/dist:dp_speedup -- [--world=2] [--steps=30] [--batch=128]
set -euo pipefail
bench="$1"; shift
world=2 args=()
for a in "$@"; do
  case "$a" in
    --world=*) world="${a#--world=}" ;;
    *) args+=("$a") ;;
  esac
done
[[ "$world" =~ ^[0-9]+$ && "$world" -ge 2 ]] || { echo "dp_speedup: --world=$world: expected an integer >= 2" >&2; exit 2; }
cores=$(nproc)
echo "dp_speedup: $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
base=$("$bench" --threads="$cores" "${args[@]+"${args[@]}"}")
echo "1 process, $cores threads (baseline):  $base"
one=$("$bench" --threads=1 "${args[@]+"${args[@]}"}")
echo "1 process, 1 thread:                $one"
port=$((29500 + RANDOM % 2000))
pids=()
for ((r = 1; r < world; r++)); do
  RANK=$r WORLD_SIZE=$world MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$bench" --threads=1 "${args[@]+"${args[@]}"}" &
  pids+=($!)
done
dp=$(RANK=0 WORLD_SIZE=$world MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$bench" --threads=1 "${args[@]+"${args[@]}"}")
for p in "${pids[@]}"; do wait "$p"; done
echo "$world ranks (Gloo), 1 thread each:    $dp"
ms() { sed -E 's/.*: step ([0-9.]+) ms.*/\1/' <<<"$1"; }
awk -v b="$(ms "$base")" -v o="$(ms "$one")" -v d="$(ms "$dp")" -v w="$world" -v c="$cores" 'BEGIN {
  printf "speed-up of %d ranks: %.2fx against 1 process with %d threads, %.2fx against 1 thread\n", w, b / d, c, o / d }'
