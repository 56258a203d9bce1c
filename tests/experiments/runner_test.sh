#!/usr/bin/env bash
# End-to-end checks of //experiments:run on the synthetic dataset: bad spec, bad database
# path, missing data, a stored run, the cache, kill -9 followed by resume, and SIGTERM.
set -uo pipefail
run="$1"
query="$2"
export BUILD_WORKSPACE_DIRECTORY="$TEST_TMPDIR/ws"   # checkpoints and the default db go here
mkdir -p "$BUILD_WORKSPACE_DIRECTORY/results"
db="$BUILD_WORKSPACE_DIRECTORY/results/mpqbench.db"
fail() { echo "FAIL: $*" >&2; exit 1; }
# Waits (at most `tries` x `pause` s) until a file matches `glob` or process `pid` exits.
wait_for() {
  local glob="$1" pid="$2" tries="$3" pause="$4"
  for _ in $(seq 1 "$tries"); do
    compgen -G "$glob" > /dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep "$pause"
  done
}
spec() { echo "$2" > "$TEST_TMPDIR/$1.json"; echo "$TEST_TMPDIR/$1.json"; }

# 1. Invalid spec: exit 2, the message names the key and lists valid ones; nothing stored.
out=$("$run" --spec="$(spec bad '{"name":"bad","epoch":3}')" 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "invalid spec exited $rc"
grep -q '"epoch": unknown key; valid keys:' <<<"$out" || fail "unclear invalid-spec message: $out"
[[ ! -e "$db" ]] || fail "an invalid spec created the database"

# 1b. A spec path that is a FIFO is refused at once (opening it would block forever); a
#     path with a comma is one file when given as an argument.
mkfifo "$TEST_TMPDIR/fifo.json"
out=$(timeout 20 "$run" "$TEST_TMPDIR/fifo.json" 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q "fifo.json: not a regular file" <<<"$out" || fail "FIFO spec: exit $rc: $out"
mkdir -p "$TEST_TMPDIR/a,b"
echo '{"name":"comma","epoch":3}' > "$TEST_TMPDIR/a,b/c.json"
out=$("$run" "$TEST_TMPDIR/a,b/c.json" 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q 'a,b/c.json: "epoch": unknown key' <<<"$out" || fail "comma in spec path: exit $rc: $out"

# 2. Unusable database path.
out=$("$run" --spec="$(spec ok '{"name":"ok","dataset":"synthetic"}')" --db=/nonexistent/dir/x.db 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "bad db path exited $rc"
grep -q "/nonexistent/dir" <<<"$out" || fail "bad db path not named: $out"

# 2b. A database path that cannot be written (a read-only filesystem: root ignores permissions).
out=$("$run" --spec="$(spec ok2 '{"name":"ok2","dataset":"synthetic"}')" --db=/proc/mpqbench_test.db 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "unwritable db path exited $rc"
grep -q "/proc/mpqbench_test.db: cannot open" <<<"$out" || fail "unwritable db path not named: $out"

# 2c. A device that is not there (no machine has a cuda:999): --device is refused before
#     anything runs (exit 2), a spec's "device" fails that spec before its run row exists;
#     a device that is not a device is an invalid spec. Nothing is stored either way.
out=$("$run" --spec="$(spec dev '{"name":"dev","dataset":"synthetic"}')" --device=cuda:999 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "--device=cuda:999 exited $rc: $out"
grep -Eq "run: --device: device cuda:999 was asked for, but (no CUDA device is usable here|only [0-9]+ CUDA device)" \
  <<<"$out" || fail "unclear --device message: $out"
out=$("$run" --spec="$(spec dev2 '{"name":"dev2","dataset":"synthetic","device":"cuda:999"}')" 2>&1); rc=$?
[[ $rc -eq 1 ]] && grep -q "dev2: device cuda:999 was asked for" <<<"$out" || fail "spec device cuda:999: exit $rc: $out"
out=$("$run" --spec="$(spec dev3 '{"name":"dev3","dataset":"synthetic","device":"gpu"}')" 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q '"device": device "gpu" is not a device' <<<"$out" || fail "spec device gpu: exit $rc: $out"
out=$("$run" --spec="$(spec dev4 '{"name":"dev4","dataset":"synthetic"}')" --device=gpu 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q 'device "gpu" is not a device' <<<"$out" || fail "--device=gpu: exit $rc: $out"
if [[ -e "$db" ]]; then
  [[ -z "$("$query" --db="$db" export --csv --table=runs | tail -n +2)" ]] || fail "a refused device stored a run"
fi

# 3. Missing data: explains how to get it, exit 2.
out=$("$run" --spec="$(spec cifar '{"name":"cifar","dataset":"cifar10"}')" 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "missing data exited $rc"
grep -q "needs the cifar10 dataset" <<<"$out" || fail "missing-data message: $out"
grep -q "binary version" <<<"$out" || fail "no instructions for CIFAR-10: $out"

# 4. A tiny real run on synthetic data: stored and finished.
small=$(spec small '{"name":"small","dataset":"synthetic","epochs":1,"train_subset":128,"batch_size":64,"weight_bits":4,"act_quantizer":"pact","act_bits":4}')
out=$("$run" --spec="$small" --threads=1 --device=cpu 2>&1) || fail "small run failed: $out"
grep -q "small: run 1 finished" <<<"$out" || fail "no finish line: $out"
# Checked with the project's own query CLI (no sqlite3 or python needed on the machine).
"$query" --db="$db" runs | grep -Eq '^ +1 +small +finished' || fail "run 1 not finished: $("$query" --db="$db" runs)"

# The runs table says where it ran: --device=cpu here, 1 thread, and the CPU's model.
"$query" --db="$db" export --csv --table=runs | grep -q '^1,small,.*,"cpu (1 threads, ' ||
  fail "run 1's device: $("$query" --db="$db" export --csv --table=runs)"

checkpoints=$("$query" --db="$db" export --csv --table=checkpoints | grep -c '^1,')
[[ "$checkpoints" == "1" ]] || fail "run 1 recorded $checkpoints checkpoints, expected 1"

# 5. Same spec again: a cache hit, no new run.
out=$("$run" --spec="$small" --threads=1 2>&1) || fail "cached run failed: $out"
grep -q "cached result of run 1" <<<"$out" || fail "no cache hit: $out"

# 6. Kill -9 after the first epoch's checkpoint, then resume the same run to the end.
rm -rf "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints"  # only the long run's checkpoint may match below
long=$(spec long '{"name":"long","dataset":"synthetic","epochs":3,"train_subset":1024,"batch_size":64}')
"$run" --spec="$long" --threads=1 > "$TEST_TMPDIR/long1.log" 2>&1 &
pid=$!
wait_for "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/run_*/last.pt" $pid 600 0.1
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
compgen -G "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/run_*/last.pt" > /dev/null || fail "no checkpoint before the kill"
out=$("$run" --spec="$long" --threads=1 2>&1) || fail "resume failed: $out"
grep -q "long: resuming run 2 (running)" <<<"$out" || fail "did not resume run 2: $out"
grep -q "resuming after epoch" <<<"$out" || fail "trainer did not resume from the checkpoint: $out"
grep -q "long: run 2 finished" <<<"$out" || fail "resumed run did not finish: $out"

# 7. IMPQ on a 4-bit start: killed in the middle of its first iteration, then resumed;
#    every point (0 = start, 1, 2) is stored once, with its allocation.
impq=$(spec impq '{"name":"impq","dataset":"synthetic","epochs":1,"train_subset":384,"batch_size":64,"weight_bits":4,"method":"impq","impq":{"weight_schedule":"0:150","max_iterations":2,"finetune_epochs":2,"finetune_lr":0.01,"eval_fraction":0.05}}')
"$run" --spec="$impq" --threads=1 > "$TEST_TMPDIR/impq1.log" 2>&1 &
pid=$!
wait_for "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/run_*/alloc/iter_1/reduced.pt" $pid 1200 0.05
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
compgen -G "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/run_*/alloc/iter_1/reduced.pt" > /dev/null ||
  fail "IMPQ did not reach its first reduction before the kill: $(cat "$TEST_TMPDIR/impq1.log")"
out=$("$run" --spec="$impq" --threads=1 2>&1) || fail "IMPQ resume failed: $out"
grep -q "impq: resuming run 3" <<<"$out" || fail "IMPQ did not resume run 3: $out"
grep -Eq "impq: run 3 finished: test top-1 .* at B_w,eff" <<<"$out" || fail "IMPQ did not finish: $out"
grep -q "reached max_iterations 2" <<<"$out" || fail "IMPQ stop reason missing: $out"
points=$("$query" --db="$db" export --csv --table=allocations | awk -F, '$1 == 3 {print $2}' | sort -u | tr '\n' ' ')
[[ "$points" == "0 1 2 " ]] || fail "IMPQ allocation points stored: '$points', expected '0 1 2 '"
vals=$("$query" --db="$db" export --csv --table=metrics | awk -F, '$1 == 3 && $4 == "point_val_top1"' | wc -l)
[[ "$vals" == "3" ]] || fail "IMPQ point_val_top1 rows: $vals, expected 3"
# Bits went down: point 2 has fewer bits in total than point 0 (150 groups lost one each time).
sum0=$("$query" --db="$db" export --csv --table=allocations | awk -F, '$1 == 3 && $2 == 0 {s += $6} END {print s}')
sum2=$("$query" --db="$db" export --csv --table=allocations | awk -F, '$1 == 3 && $2 == 2 {s += $6} END {print s}')
[[ $((sum0 - sum2)) -eq 300 ]] || fail "IMPQ lowered $((sum0 - sum2)) bits in two iterations, expected 300"

# 8. EdMIPS: a one-epoch search, then one epoch of the discrete network; the soft
#    architecture and each point's allocation are stored.
ed=$(spec ed '{"name":"ed","dataset":"synthetic","epochs":1,"train_subset":128,"batch_size":64,"method":"edmips","weight_quantizer":"hwgq","act_quantizer":"hwgq","granularity":"per_tensor","quantize_first_and_last":false,"edmips":{"search_epochs":1}}')
out=$("$run" --spec="$ed" --threads=1 2>&1) || fail "EdMIPS run failed: $out"
grep -Eq "ed: run 4 finished: .*edmips, final point 2" <<<"$out" || fail "EdMIPS did not finish: $out"
points=$("$query" --db="$db" export --csv --table=allocations | awk -F, '$1 == 4 {print $2}' | sort -u | tr '\n' ' ')
[[ "$points" == "1 2 " ]] || fail "EdMIPS allocation points: '$points', expected '1 2 '"
alphas=$("$query" --db="$db" export --csv --table=metrics | awk -F, '$1 == 4 && $4 ~ /^alpha:/' | wc -l)
# 18 searched layers x (4 weight + 3 activation candidates)
[[ "$alphas" == "126" ]] || fail "EdMIPS alpha metrics: $alphas, expected 126"
bad=$(spec bad_ed '{"name":"bad_ed","dataset":"synthetic","method":"edmips","weight_quantizer":"lin"}')
out=$("$run" --spec="$bad" 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q "edmips searches HWGQ" <<<"$out" || fail "bad EdMIPS spec: exit $rc: $out"

# 9. SIGTERM (Slurm's preemption) after the first epoch's checkpoint: the run stops at its
#    next step, is stored as interrupted with the message, the runner exits 143 and
#    starts nothing else; run again, it resumes from the checkpoint and finishes.
rm -rf "$BUILD_WORKSPACE_DIRECTORY"/results/checkpoints/*/run_*/last.pt
term=$(spec term '{"name":"term","dataset":"synthetic","epochs":3,"train_subset":1024,"batch_size":64}')
other=$(spec other '{"name":"other","dataset":"synthetic","epochs":1,"train_subset":64,"batch_size":64}')
"$run" --threads=1 "$term" "$other" > "$TEST_TMPDIR/term1.log" 2>&1 &
pid=$!
wait_for "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/run_*/last.pt" $pid 600 0.1
kill -TERM $pid 2>/dev/null
wait $pid; rc=$?
[[ $rc -eq 143 ]] || fail "SIGTERM: the runner exited $rc, expected 143: $(cat "$TEST_TMPDIR/term1.log")"
grep -q "interrupted by SIGTERM during training epoch" "$TEST_TMPDIR/term1.log" ||
  fail "no interruption message: $(cat "$TEST_TMPDIR/term1.log")"
"$query" --db="$db" runs | grep -Eq '^ +5 +term +interrupted' || fail "run 5 not interrupted: $("$query" --db="$db" runs)"
"$query" --db="$db" runs | grep -q ' other ' && fail "the runner started another run after SIGTERM"
out=$("$run" --spec="$term" --threads=1 2>&1) || fail "resume after SIGTERM failed: $out"
grep -q "term: resuming run 5 (interrupted)" <<<"$out" || fail "did not resume run 5: $out"
grep -q "resuming after epoch" <<<"$out" || fail "no checkpoint resume after SIGTERM: $out"
grep -q "term: run 5 finished" <<<"$out" || fail "run 5 did not finish: $out"
echo "PASS"
