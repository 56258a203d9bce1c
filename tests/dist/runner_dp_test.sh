#!/usr/bin/env bash
# //experiments:run as two data-parallel ranks (Gloo on loopback), from torch.distributed's
# environment: rank 0 alone writes one run (metrics once per epoch, one checkpoint per
# epoch), rank 1 writes and prints nothing; a second launch is a cache hit on both;
# SIGTERM to both mid-run stops both at the same step (143), the run stored as
# interrupted; relaunched, both resume from rank 0's checkpoint and finish; IMPQ on 2
# ranks, stopped and relaunched mid-allocation, finishes with every point stored once.
set -uo pipefail
run="$1"
query="$2"
worker="$3"  # dp_worker: a free port
export BUILD_WORKSPACE_DIRECTORY="$TEST_TMPDIR/ws"
mkdir -p "$BUILD_WORKSPACE_DIRECTORY/results"
db="$BUILD_WORKSPACE_DIRECTORY/results/mpqbench.db"
fail() { echo "FAIL: $*" >&2; exit 1; }
spec() { echo "$2" > "$TEST_TMPDIR/$1.json"; echo "$TEST_TMPDIR/$1.json"; }

# launch NAME SPEC...: both ranks in the background; pids in p0, p1.
launch() {
  local name="$1" port
  shift
  port=$("$worker" --free_port)
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=0 timeout 600 "$run" --threads=1 "$@" \
    > "$TEST_TMPDIR/$name.0.out" 2> "$TEST_TMPDIR/$name.0.err" &
  p0=$!
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=1 timeout 600 "$run" --threads=1 "$@" \
    > "$TEST_TMPDIR/$name.1.out" 2> "$TEST_TMPDIR/$name.1.err" &
  p1=$!
}
# finish NAME: waits for both; exit codes in rc0, rc1.
finish() {
  rc0=0 rc1=0
  wait $p0 || rc0=$?
  wait $p1 || rc1=$?
}
logs() { for f in "$TEST_TMPDIR/$1".*; do echo "== $f"; cat "$f"; done; }

# 1. Two ranks, one run.
small=$(spec small '{"name":"small","dataset":"synthetic","epochs":2,"train_subset":256,"batch_size":64,"weight_bits":4,"act_quantizer":"pact","act_bits":4}')
launch small "$small"; finish
[[ $rc0 -eq 0 && $rc1 -eq 0 ]] || fail "ranks exited $rc0, $rc1: $(logs small)"
grep -q "small: run 1 finished" "$TEST_TMPDIR/small.0.out" || fail "rank 0 did not finish run 1: $(logs small)"
[[ ! -s "$TEST_TMPDIR/small.1.out" ]] || fail "rank 1 printed: $(cat "$TEST_TMPDIR/small.1.out")"
runs=$("$query" --db="$db" runs)
[[ $(grep -c ' small ' <<<"$runs") -eq 1 ]] && grep -Eq '^ +1 +small +finished' <<<"$runs" || fail "runs: $runs"
losses=$("$query" --db="$db" export --csv --table=metrics | awk -F, '$1 == 1 && $4 == "train_loss"' | wc -l)
[[ "$losses" == "2" ]] || fail "run 1 stored $losses train_loss rows, expected 2 (one per epoch, rank 0 only)"
checkpoints=$("$query" --db="$db" export --csv --table=checkpoints | grep -c '^1,')
[[ "$checkpoints" == "2" ]] || fail "run 1 recorded $checkpoints checkpoints, expected 2"
# The epoch's train loss is the global batch's: rank 0 printed what the store holds.
grep -q "epoch 2/2: train loss" "$TEST_TMPDIR/small.0.out" || fail "no epoch line on rank 0: $(logs small)"

# 2. Again: a cache hit on both ranks, no new run.
launch again "$small"; finish
[[ $rc0 -eq 0 && $rc1 -eq 0 ]] || fail "cached launch exited $rc0, $rc1: $(logs again)"
grep -q "cached result of run 1" "$TEST_TMPDIR/again.0.out" || fail "no cache hit: $(logs again)"
[[ $("$query" --db="$db" runs | grep -c ' small ') -eq 1 ]] || fail "the cached launch added a run"

# 3. SIGTERM to both ranks after the first checkpoint: both stop, 143, run interrupted;
#    relaunched, both resume and finish; each epoch's metrics stored once.
term=$(spec term '{"name":"term","dataset":"synthetic","epochs":4,"train_subset":1024,"batch_size":64}')
launch term1 "$term"
for _ in $(seq 1 600); do
  compgen -G "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/run_2/last.pt" > /dev/null && break
  kill -0 $p0 2>/dev/null || break
  sleep 0.1
done
compgen -G "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/run_2/last.pt" > /dev/null || fail "no checkpoint: $(logs term1)"
kill -TERM $p0 $p1 2>/dev/null
finish
[[ $rc0 -eq 143 && $rc1 -eq 143 ]] || fail "SIGTERM: ranks exited $rc0, $rc1 (expected 143 both): $(logs term1)"
"$query" --db="$db" runs | grep -Eq '^ +2 +term +interrupted' || fail "run 2 not interrupted: $("$query" --db="$db" runs)"
launch term2 "$term"; finish
[[ $rc0 -eq 0 && $rc1 -eq 0 ]] || fail "resume exited $rc0, $rc1: $(logs term2)"
grep -q "term: resuming run 2 (interrupted)" "$TEST_TMPDIR/term2.0.out" || fail "did not resume run 2: $(logs term2)"
grep -q "resuming after epoch" "$TEST_TMPDIR/term2.0.out" || fail "no checkpoint resume: $(logs term2)"
grep -q "term: run 2 finished" "$TEST_TMPDIR/term2.0.out" || fail "run 2 did not finish: $(logs term2)"
losses=$("$query" --db="$db" export --csv --table=metrics | awk -F, '$1 == 2 && $4 == "train_loss"' | wc -l)
[[ "$losses" == "4" ]] || fail "run 2 stored $losses train_loss rows, expected 4"

# 4. Every method runs across ranks: IMPQ on 2 ranks (its sensitivity passes on every
#    rank's whole calibration split, its state files written by rank 0 alone, a follower
#    working on a private copy). Killed by SIGTERM after its first reduction, relaunched:
#    both resume from rank 0's state and finish; every point stored once with its
#    allocation; rank 1 prints nothing. Every data-parallel run ends by checking that the
#    ranks agree on the test and validation top-1 and on the final allocation (they hold
#    the same weights and evaluate the whole sets), so finishing is that check passing.
impq=$(spec impq '{"name":"impq","dataset":"synthetic","epochs":1,"train_subset":256,"batch_size":64,"weight_bits":4,"method":"impq","impq":{"weight_schedule":"0:40","max_iterations":2,"finetune_epochs":2,"finetune_lr":0.01,"eval_fraction":0.05}}')
launch impq1 "$impq"
for _ in $(seq 1 1200); do
  compgen -G "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/run_3/alloc/iter_1/reduced.pt" > /dev/null && break
  kill -0 $p0 2>/dev/null || break
  sleep 0.05
done
kill -TERM $p0 $p1 2>/dev/null
finish
[[ $rc0 -eq 143 && $rc1 -eq 143 ]] || fail "IMPQ SIGTERM: ranks exited $rc0, $rc1 (expected 143 both): $(logs impq1)"
launch impq2 "$impq"; finish
[[ $rc0 -eq 0 && $rc1 -eq 0 ]] || fail "IMPQ relaunch exited $rc0, $rc1: $(logs impq2)"
grep -q "impq: resuming run 3" "$TEST_TMPDIR/impq2.0.out" || fail "IMPQ did not resume run 3: $(logs impq2)"
grep -Eq "impq: run 3 finished: .* final point 2" "$TEST_TMPDIR/impq2.0.out" || fail "IMPQ did not finish: $(logs impq2)"
[[ ! -s "$TEST_TMPDIR/impq2.1.out" ]] || fail "rank 1 printed: $(cat "$TEST_TMPDIR/impq2.1.out")"
points=$("$query" --db="$db" export --csv --table=allocations | awk -F, '$1 == 3 {print $2}' | sort -u | tr '\n' ' ')
[[ "$points" == "0 1 2 " ]] || fail "IMPQ points stored: '$points', expected '0 1 2 '"
vals=$("$query" --db="$db" export --csv --table=metrics | awk -F, '$1 == 3 && $4 == "point_val_top1"' | wc -l)
[[ "$vals" == "3" ]] || fail "IMPQ point_val_top1 rows: $vals, expected 3 (each point once)"
compgen -G "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/run_3/rank_*" > /dev/null &&
  fail "a follower's private state copy was left behind: $(ls -d "$BUILD_WORKSPACE_DIRECTORY"/results/checkpoints/*/run_3/rank_*)"
# 5. Every registered method's smoke spec (methods_test's) on 2 ranks, in one launch:
#    each finishes, which includes the ranks agreeing on its result and final allocation.
names=()
specs=()
while IFS= read -r line; do
  name=$(sed -E 's/.*"name":"([^"]+)".*/\1/' <<<"$line")
  names+=("$name")
  specs+=("$(spec "$name" "$line")")
done < <("$worker" --smoke_specs)
(( ${#specs[@]} >= 7 )) || fail "only ${#specs[@]} smoke specs"
launch methods "${specs[@]}"; finish
[[ $rc0 -eq 0 && $rc1 -eq 0 ]] || fail "methods on 2 ranks exited $rc0, $rc1: $(logs methods)"
for name in "${names[@]}"; do
  grep -Eq "^$name: run [0-9]+ finished" "$TEST_TMPDIR/methods.0.out" || fail "$name did not finish on 2 ranks: $(logs methods)"
done
[[ ! -s "$TEST_TMPDIR/methods.1.out" ]] || fail "rank 1 printed: $(cat "$TEST_TMPDIR/methods.1.out")"
echo "on 2 ranks: ${names[*]}"
echo "1 passed, 0 failed"
