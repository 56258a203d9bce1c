#!/usr/bin/env bash
# //experiments:nightly's script on a one-table fixture: it runs the table's experiments
# (a tiny synthetic one; one whose dataset is missing is listed, not failed), exports the
# snapshot and renders the report, makes a fresh machine (no database) reuse the
# snapshot's runs, refuses to overlap another nightly, and exits non-zero when a run or
# the snapshot fails.
set -uo pipefail
nightly="$1"; run="$2"; render="$3"; query="$4"; slurm="$5"; slurm_task="$6"
export BUILD_WORKSPACE_DIRECTORY="$TEST_TMPDIR/ws"
mkdir -p "$BUILD_WORKSPACE_DIRECTORY/results" "$TEST_TMPDIR/exp"
fail() { echo "FAIL: $*" >&2; exit 1; }
exp="$TEST_TMPDIR/exp"
echo '{"name":"tiny","dataset":"synthetic","epochs":1,"train_subset":64,"batch_size":32}' > "$exp/tiny.json"
echo '{"name":"needs_cifar","dataset":"cifar10","epochs":1}' > "$exp/needs_cifar.json"
echo '{"name":"t","paper":"impq2022","table":"CIFAR-10","dataset":"cifar10","experiments":[' \
     "$(cat "$exp/tiny.json"),$(cat "$exp/needs_cifar.json")]}" > "$exp/t.table.json"

# 1. A nightly: runs tiny, lists needs_cifar as no data, writes the report, exits 0.
out=$("$nightly" "$run" "$render" "$query" "$slurm" "$slurm_task" "$exp/t.table.json" --threads=1 2>&1); rc=$?
[[ $rc -eq 0 ]] || fail "nightly exited $rc: $out"
grep -q "tiny: run 1 finished" <<<"$out" || fail "tiny did not run: $out"
grep -Eq "needs_cifar +- +no data" <<<"$out" || fail "needs_cifar not listed as no data: $out"
md="$BUILD_WORKSPACE_DIRECTORY/reports/out/report.md"
[[ -f "$md" && -f "$BUILD_WORKSPACE_DIRECTORY/reports/out/report.html" ]] || fail "no report written: $out"
grep -q '`tiny`' "$md" || fail "the report has no tiny row"
snap="$BUILD_WORKSPACE_DIRECTORY/results/published/snapshot.json"
[[ -f "$snap" ]] || fail "no snapshot exported: $out"
grep -q '"name":"tiny"' "$snap" || fail "the snapshot has no tiny run: $(head -c 600 "$snap")"

# 2. Again: tiny is a cache hit.
out=$("$nightly" "$run" "$render" "$query" "$slurm" "$slurm_task" "$exp/t.table.json" --threads=1 2>&1) || fail "second nightly failed: $out"
grep -q "cached result of run 1" <<<"$out" || fail "no cache hit: $out"
grep -q "0 runs imported, 0 replaced an unfinished copy, 1 already in" <<<"$out" || fail "import not idempotent: $out"
cp "$snap" "$TEST_TMPDIR/snapshot.before"

# 2b. Another machine: no database, only the committed snapshot. tiny is not run again.
rm -f "$BUILD_WORKSPACE_DIRECTORY"/results/mpqbench.db*
out=$("$nightly" "$run" "$render" "$query" "$slurm" "$slurm_task" "$exp/t.table.json" --threads=1 2>&1) || fail "nightly from the snapshot failed: $out"
grep -q "1 runs imported" <<<"$out" || fail "the snapshot was not imported: $out"
grep -q "cached result of run 1" <<<"$out" || fail "the snapshot's run was not a cache hit: $out"
cmp -s "$snap" "$TEST_TMPDIR/snapshot.before" || fail "the snapshot changed on a round trip: $(diff "$TEST_TMPDIR/snapshot.before" "$snap" | head -5)"

# 2b'. The report from the snapshot alone (no database), and its errors.
out=$("$render" --snapshot="$snap" --tables="$exp/t.table.json" --out="$TEST_TMPDIR/from_snapshot" 2>&1) || fail "render --snapshot failed: $out"
grep -q '`tiny`' "$TEST_TMPDIR/from_snapshot/report.md" || fail "the snapshot's report has no tiny row"
grep -q "a run in that snapshot" "$TEST_TMPDIR/from_snapshot/report.md" || fail "the report does not name the snapshot"
out=$("$render" --snapshot="$TEST_TMPDIR/none.json" --out="$TEST_TMPDIR/x" 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q "none.json: cannot read it" <<<"$out" || fail "missing snapshot: exit $rc: $out"
out=$("$render" --snapshot="$snap" --db="$TEST_TMPDIR/x.db" 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q "not both" <<<"$out" || fail "--snapshot with --db: exit $rc: $out"

# 2c. A damaged snapshot: exit 2 before running anything, the database untouched.
cp "$snap" "$TEST_TMPDIR/snapshot.good"
echo '{"format": "mpqbench-results-snapshot", "version": 1, "runs": [{"run": {"id": "x"}}]}' > "$snap"
out=$("$nightly" "$run" "$render" "$query" "$slurm" "$slurm_task" "$exp/t.table.json" --threads=1 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "nightly with a damaged snapshot exited $rc: $out"
grep -q 'runs\[0\].*id: expected an integer' <<<"$out" || fail "no clear snapshot error: $out"
cp "$TEST_TMPDIR/snapshot.good" "$snap"

# 3. Another nightly holds the lock: exit 3 at once, nothing run.
exec 8>"$BUILD_WORKSPACE_DIRECTORY/results/nightly.lock"
flock -n 8 || fail "could not take the lock for the test"
out=$("$nightly" "$run" "$render" "$query" "$slurm" "$slurm_task" "$exp/t.table.json" 2>&1); rc=$?
[[ $rc -eq 3 ]] || fail "overlapping nightly exited $rc: $out"
grep -q "another nightly holds" <<<"$out" || fail "no lock message: $out"
exec 8>&-

# 4. A failing run (a spec the runner rejects) makes the nightly exit 1, after the report.
echo '{"name":"bad","dataset":"synthetic","epochs":0}' > "$exp/bad.json"
echo '{"name":"t2","paper":"impq2022","table":"CIFAR-10","dataset":"cifar10","experiments":[' \
     "$(cat "$exp/bad.json")]}" > "$exp/t2.table.json"
out=$("$nightly" "$run" "$render" "$query" "$slurm" "$slurm_task" "$exp/t2.table.json" 2>&1); rc=$?
[[ $rc -eq 1 ]] || fail "nightly with a failing run exited $rc: $out"
# 5. Merging the nightly's database into another (as a sweep's shards are): every run
#    once; again: nothing new; a database into itself: refused.
db="$BUILD_WORKSPACE_DIRECTORY/results/mpqbench.db"
out=$("$query" merge "$db" --into="$TEST_TMPDIR/merged.db" 2>&1) || fail "merge failed: $out"
grep -Eq ": [0-9]+ runs added, 0 updated, 0 already in" <<<"$out" || fail "first merge: $out"
out=$("$query" merge "$db" --into="$TEST_TMPDIR/merged.db" 2>&1) || fail "second merge failed: $out"
grep -q ": 0 runs added, 0 updated, [0-9]* already in" <<<"$out" || fail "second merge wrote: $out"
[[ $("$query" --db="$TEST_TMPDIR/merged.db" runs | grep -c 'tiny') -ge 1 ]] || fail "tiny not merged"
[[ $("$query" --db="$TEST_TMPDIR/merged.db" runs | wc -l) -eq $("$query" --db="$db" runs | wc -l) ]] ||
  fail "merged $("$query" --db="$TEST_TMPDIR/merged.db" runs) from $("$query" --db="$db" runs)"
out=$("$query" merge "$db" --into="$db" 2>&1); rc=$?
[[ $rc -eq 1 ]] && grep -q "is the database merged into" <<<"$out" || fail "self-merge: exit $rc: $out"
echo "PASS"
