#!/usr/bin/env bash
# The one script for a lent GPU machine (issue #18): build the harness there, check it,
# run the quickstart on the GPU, move a run between the GPU and the CPU, and time training
# steps against PyTorch eager. Every result goes to OUT (default $OUT, else build/device).
#
#   tools/gpu/device_check.sh [LIBTORCH_DIR]    # default: the python3 torch's directory
#
# Needs build/gpu_deps (tools/gpu/pack_deps.sh, run on the Debian machine and carried).
# Steps, each logged to OUT/<n>_<step>.log, each allowed to fail without stopping the rest:
#   1 build      tools/gpu/build.sh
#   2 libtorch   tools/check_libtorch.sh (every quantizer: CUDA op chain vs CPU kernels)
#   3 health     build/gpu/healthcheck
#   4 quickstart quickstart_fp32 and quickstart_w4a4 on Fashion-MNIST, --device=auto
#   5 move       a 3-epoch synthetic W4A4 run: SIGTERM after its first checkpoint on one
#                device, resumed on the other, both ways; IMPQ stopped after its first
#                reduction on the GPU and resumed on the CPU, the allocations stored before
#                the move compared with those after
#   6 steps      tools/gpu/step_benchmark vs tools/gpu/eager_step.py: ResNet-20 32x32 batch
#                128 and ResNet-18 224x224 batch 64, FP32 and W4A4 (OUT/steps.jsonl)
# On a machine without CUDA (to test this script) --device=auto is the CPU and step 5
# moves between the CPU and the CPU; STEPS_SCALE=small shrinks step 6.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-build/device}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${PYTHON:-python3}
root=${1:-$($py -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null)}
[[ -n "$root" ]] || { echo "device_check: no LIBTORCH_DIR and no torch in $py" >&2; exit 2; }
deps=${DEPS:-build/gpu_deps}
summary="$out/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
step() {  # n name command...
  local n=$1 name=$2; shift 2
  local start=$SECONDS
  "$@" > "$out/${n}_$name.log" 2>&1
  local rc=$?
  note "step $n $name: exit $rc, $((SECONDS - start)) s"
  return $rc
}
note "device_check $(date -u +%FT%TZ) at $(git describe --always --dirty 2>/dev/null), LibTorch $root"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$summary" 2>&1 || note "no nvidia-smi"

step 1 build tools/gpu/build.sh "$root" "$deps" build/gpu || { note "build failed: see $out/1_build.log"; exit 1; }
step 2 libtorch env OUT_DIR="$out/libtorch_check" tools/check_libtorch.sh "$root"
step 3 health build/gpu/healthcheck

export BUILD_WORKSPACE_DIRECTORY=$PWD
db="$out/device.db"
runner=(build/gpu/run --papers_dir=experiments/papers --db="$db")
# QUICKSTART_FLAGS: e.g. --epochs=1 to test this script on a CPU in minutes.
step 4 quickstart tools/gpu/run.sh "$deps" quickstart_fp32 quickstart_w4a4 -- --db="$db" ${QUICKSTART_FLAGS:-}
build/gpu/query --db="$db" runs >> "$out/4_quickstart.log" 2>&1

gpu=auto
cpu=cpu
move() {  # name spec first_device second_device
  local name=$1 spec=$2 first=$3 second=$4
  echo "$spec" > "$out/$name.json"
  "${runner[@]}" --device="$first" "$out/$name.json" > "$out/$name.1.log" 2>&1 &
  local pid=$! tries=0
  until compgen -G "$(state_root)/run_*/$5" > /dev/null || ! kill -0 $pid 2>/dev/null; do
    sleep 0.2; tries=$((tries + 1)); (( tries < 3000 )) || break
  done
  kill -TERM $pid 2>/dev/null
  wait $pid
  echo "first part on $first: exit $? (143 = stopped by SIGTERM)"
  allocations "$name" > "$out/$name.before.csv"
  "${runner[@]}" --device="$second" "$out/$name.json" 2>&1 | tee "$out/$name.2.log"
  allocations "$name" > "$out/$name.after.csv"
  # What was allocated before the move must be what the resumed run holds.
  if [[ -s "$out/$name.before.csv" ]]; then
    if [[ -z "$(comm -23 "$out/$name.before.csv" "$out/$name.after.csv")" ]]; then
      echo "$name: the $(wc -l < "$out/$name.before.csv") allocation rows stored on $first are unchanged after resuming on $second"
    else
      echo "$name: ALLOCATIONS CHANGED by the move:"; comm -23 "$out/$name.before.csv" "$out/$name.after.csv" | head
    fi
  fi
  grep -q "$name: run [0-9]* finished" "$out/$name.2.log" && echo "$name: finished on $second" || echo "$name: NOT FINISHED"
}
allocations() {  # name: its run's allocation rows (point, layer, group, bits...), sorted
  local id
  id=$(build/gpu/query --db="$db" export --csv --table=runs | awk -F, -v n="$1" '$2 == n {print $1}' | tail -1)
  [[ -n "$id" ]] && build/gpu/query --db="$db" export --csv --table=allocations | awk -F, -v r="$id" '$1 == r' | sort
}
# This database's state directory (results/checkpoints/<its id>): only its runs are
# touched, never those of the checkout's own database.
state_root() {
  echo "$PWD/results/checkpoints/$($py -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT value FROM meta WHERE key = '"'database_id'"'").fetchone()[0])' "$db")"
}
moves() {
  rm -rf "$(state_root)"
  local base='"dataset":"synthetic","epochs":3,"train_subset":2048,"batch_size":64,"weight_bits":4,"act_quantizer":"pact","act_bits":4'
  move gpu_to_cpu "{\"name\":\"gpu_to_cpu\",$base}" "$gpu" "$cpu" last.pt
  rm -rf "$(state_root)"
  move cpu_to_gpu "{\"name\":\"cpu_to_gpu\",$base,\"seed\":2}" "$cpu" "$gpu" last.pt
  rm -rf "$(state_root)"
  local impq='"dataset":"synthetic","epochs":1,"train_subset":512,"batch_size":64,"weight_bits":4,"method":"impq","impq":{"weight_schedule":"0:150","max_iterations":2,"finetune_epochs":1,"finetune_lr":0.01,"eval_fraction":0.02}'
  move impq_moved "{\"name\":\"impq_moved\",$impq}" "$gpu" "$cpu" alloc/iter_1/reduced.pt
  build/gpu/query --db="$db" runs
}
step 5 move moves

steps() {
  local n=20 r=5 b18=64
  [[ "${STEPS_SCALE:-}" == small ]] && { n=2; r=1; b18=4; }
  for cfg in "resnet20 32 128" "resnet18 224 $b18"; do
    set -- $cfg
    for bits in 32 4; do
      build/gpu/step_benchmark --model="$1" --image_size="$2" --batch="$3" --bits="$bits" --steps=$n --repeats=$r
      $py tools/gpu/eager_step.py --model "$1" --image_size "$2" --batch "$3" --bits "$bits" --steps $n --repeats $r \
        --device "$($py -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')"
    done
  done
}
step 6 steps steps
grep '^{' "$out/6_steps.log" > "$out/steps.jsonl"
cat "$out/steps.jsonl" >> "$summary"
note "done: $out"
