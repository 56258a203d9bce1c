#!/usr/bin/env bash
# End-to-end checks of //experiments:run on the synthetic dataset: bad spec, bad database
# path, missing data, a stored run, the cache, and kill -9 followed by resume.
set -uo pipefail
run="$1"
query="$2"
export BUILD_WORKSPACE_DIRECTORY="$TEST_TMPDIR/ws"   # checkpoints and the default db go here
mkdir -p "$BUILD_WORKSPACE_DIRECTORY/results"
db="$BUILD_WORKSPACE_DIRECTORY/results/mpqbench.db"
fail() { echo "FAIL: $*" >&2; exit 1; }
spec() { echo "$2" > "$TEST_TMPDIR/$1.json"; echo "$TEST_TMPDIR/$1.json"; }

# 1. Invalid spec: exit 2, the message names the key and lists valid ones; nothing stored.
out=$("$run" --spec="$(spec bad '{"name":"bad","epoch":3}')" 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "invalid spec exited $rc"
grep -q '"epoch": unknown key; valid keys:' <<<"$out" || fail "unclear invalid-spec message: $out"
[[ ! -e "$db" ]] || fail "an invalid spec created the database"

# 2. Unusable database path.
out=$("$run" --spec="$(spec ok '{"name":"ok","dataset":"synthetic"}')" --db=/nonexistent/dir/x.db 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "bad db path exited $rc"
grep -q "/nonexistent/dir" <<<"$out" || fail "bad db path not named: $out"

# 2b. A database path that cannot be written (a read-only filesystem: root ignores permissions).
out=$("$run" --spec="$(spec ok2 '{"name":"ok2","dataset":"synthetic"}')" --db=/proc/mpqbench_test.db 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "unwritable db path exited $rc"
grep -q "/proc/mpqbench_test.db: cannot open" <<<"$out" || fail "unwritable db path not named: $out"

# 3. Missing data: explains how to get it, exit 2.
out=$("$run" --spec="$(spec cifar '{"name":"cifar","dataset":"cifar10"}')" 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "missing data exited $rc"
grep -q "needs the cifar10 dataset" <<<"$out" || fail "missing-data message: $out"
grep -q "binary version" <<<"$out" || fail "no instructions for CIFAR-10: $out"

# 4. A tiny real run on synthetic data: stored and finished.
small=$(spec small '{"name":"small","dataset":"synthetic","epochs":1,"train_subset":128,"batch_size":64,"weight_bits":4,"act_quantizer":"pact","act_bits":4}')
out=$("$run" --spec="$small" --threads=1 2>&1) || fail "small run failed: $out"
grep -q "small: run 1 finished" <<<"$out" || fail "no finish line: $out"
# Checked with the project's own query CLI (no sqlite3 or python needed on the machine).
"$query" --db="$db" runs | grep -Eq '^ +1 +small +finished' || fail "run 1 not finished: $("$query" --db="$db" runs)"

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
for _ in $(seq 1 600); do
  compgen -G "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/last.pt" > /dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
compgen -G "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/last.pt" > /dev/null || fail "no checkpoint before the kill"
out=$("$run" --spec="$long" --threads=1 2>&1) || fail "resume failed: $out"
grep -q "long: resuming run 2 (running)" <<<"$out" || fail "did not resume run 2: $out"
grep -q "resuming after epoch" <<<"$out" || fail "trainer did not resume from the checkpoint: $out"
grep -q "long: run 2 finished" <<<"$out" || fail "resumed run did not finish: $out"
echo "PASS"
