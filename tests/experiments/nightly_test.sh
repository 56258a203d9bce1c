#!/usr/bin/env bash
# //experiments:nightly's script on a one-table fixture: it runs the table's experiments
# (a tiny synthetic one; one whose dataset is missing is listed, not failed), renders the
# report, refuses to overlap another nightly, and exits non-zero when a run fails.
set -uo pipefail
nightly="$1"; run="$2"; render="$3"
export BUILD_WORKSPACE_DIRECTORY="$TEST_TMPDIR/ws"
mkdir -p "$BUILD_WORKSPACE_DIRECTORY/results" "$TEST_TMPDIR/exp"
fail() { echo "FAIL: $*" >&2; exit 1; }
exp="$TEST_TMPDIR/exp"
echo '{"name":"tiny","dataset":"synthetic","epochs":1,"train_subset":64,"batch_size":32}' > "$exp/tiny.json"
echo '{"name":"needs_cifar","dataset":"cifar10","epochs":1}' > "$exp/needs_cifar.json"
echo '{"name":"t","paper":"impq2022","table":"CIFAR-10","dataset":"cifar10","experiments":[' \
     "$(cat "$exp/tiny.json"),$(cat "$exp/needs_cifar.json")]}" > "$exp/t.table.json"

# 1. A nightly: runs tiny, lists needs_cifar as no data, writes the report, exits 0.
out=$("$nightly" "$run" "$render" "$exp/t.table.json" --threads=1 2>&1); rc=$?
[[ $rc -eq 0 ]] || fail "nightly exited $rc: $out"
grep -q "tiny: run 1 finished" <<<"$out" || fail "tiny did not run: $out"
grep -Eq "needs_cifar +- +no data" <<<"$out" || fail "needs_cifar not listed as no data: $out"
md="$BUILD_WORKSPACE_DIRECTORY/reports/out/report.md"
[[ -f "$md" && -f "$BUILD_WORKSPACE_DIRECTORY/reports/out/report.html" ]] || fail "no report written: $out"
grep -q '`tiny`' "$md" || fail "the report has no tiny row"

# 2. Again: tiny is a cache hit.
out=$("$nightly" "$run" "$render" "$exp/t.table.json" --threads=1 2>&1) || fail "second nightly failed: $out"
grep -q "cached result of run 1" <<<"$out" || fail "no cache hit: $out"

# 3. Another nightly holds the lock: exit 3 at once, nothing run.
exec 8>"$BUILD_WORKSPACE_DIRECTORY/results/nightly.lock"
flock -n 8 || fail "could not take the lock for the test"
out=$("$nightly" "$run" "$render" "$exp/t.table.json" 2>&1); rc=$?
[[ $rc -eq 3 ]] || fail "overlapping nightly exited $rc: $out"
grep -q "another nightly holds" <<<"$out" || fail "no lock message: $out"
exec 8>&-

# 4. A failing run (a spec the runner rejects) makes the nightly exit 1, after the report.
echo '{"name":"bad","dataset":"synthetic","epochs":0}' > "$exp/bad.json"
echo '{"name":"t2","paper":"impq2022","table":"CIFAR-10","dataset":"cifar10","experiments":[' \
     "$(cat "$exp/bad.json")]}" > "$exp/t2.table.json"
out=$("$nightly" "$run" "$render" "$exp/t2.table.json" 2>&1); rc=$?
[[ $rc -eq 1 ]] || fail "nightly with a failing run exited $rc: $out"
echo "PASS"
