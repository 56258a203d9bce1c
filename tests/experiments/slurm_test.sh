#!/usr/bin/env bash
# The Slurm executor (experiments/slurm.sh) on a real one-node Slurm cluster on localhost
# (slurmctld, slurmd and munged from Debian's slurm-wlm and munge, started and stopped
# here by tools/slurm_local.sh): a two-experiment sweep on the synthetic dataset, one job
# each, shards merged into the main database; the same sweep again (cache hits, nothing
# duplicated); the nightly through the executor (merge, snapshot, report); a job that Slurm
# requeues half-way and that resumes its run; and bad arguments.
set -uo pipefail
# Absolute: step 1 runs from another directory.
abs() { [[ "$1" == /* ]] && echo "$1" || echo "$PWD/$1"; }
run=$(abs "$1"); query=$(abs "$2"); render=$(abs "$3"); slurm=$(abs "$4"); slurm_task=$(abs "$5")
nightly=$(abs "$6"); cluster=$(abs "$7"); run_specs=$(abs "$8"); board_spec=$(abs "$9"); board_slurm=$(abs "${10}")
fail() {
  echo "FAIL: $*" >&2
  for f in "${cdir:-/nonexistent}"/slurmctld.log "${cdir:-/nonexistent}"/slurmd.log; do
    [[ -f "$f" ]] && { echo "--- tail of $f" >&2; tail -15 "$f" >&2; }
  done
  exit 1
}
# Socket paths must be short: the cluster lives in /tmp, not in TEST_TMPDIR.
cdir=$(mktemp -d /tmp/mpqslurm.XXXXXX)
trap '"$cluster" stop "$cdir"; rm -rf "$cdir"' EXIT
out=$("$cluster" start "$cdir" 2>&1) || fail "the cluster did not start: $out"
export SLURM_CONF="$cdir/slurm.conf"
export PATH="$PATH:/usr/sbin"

ws="$TEST_TMPDIR/ws"
export BUILD_WORKSPACE_DIRECTORY="$ws"
mkdir -p "$ws/results" "$TEST_TMPDIR/exp"
exp="$TEST_TMPDIR/exp"
db="$ws/results/mpqbench.db"
echo '{"name":"sweep_a","dataset":"synthetic","epochs":1,"train_subset":64,"batch_size":32}' > "$exp/sweep_a.json"
echo '{"name":"sweep_b","dataset":"synthetic","epochs":1,"train_subset":64,"batch_size":32,"weight_bits":4}' > "$exp/sweep_b.json"
printf -- '--cpus-per-task=1\n--time=10\n' > "$exp/sweep_a.slurm"   # as experiment(slurm = ...) writes it
printf -- '--cpus-per-task=1\n--time=10\n' > "$exp/sweep_b.slurm"
runs_of() { "$query" --db="$1" runs 2>/dev/null | grep -cw "$2"; }

# 0. experiment(slurm = dict(cpus = 2, time = "2:00:00")) (experiments/BUILD's board):
#    sbatch options in <name>.slurm, nothing of them in the spec (the run identity).
[[ "$(cat "$board_slurm")" == $'--cpus-per-task=2\n--time=2:00:00' ]] || fail "board resources: $(cat "$board_slurm")"
! grep -q slurm "$board_spec" || fail "the spec carries its resources: $(cat "$board_spec")"

# 1. The sweep through an experiment target's wrapper (run_specs.sh --executor=slurm):
#    one array job of two tasks (same resources), both finished, merged.
out=$(cd "$TEST_TMPDIR" && "$run_specs" "$run" "$query" "$slurm" "$slurm_task" exp/sweep_a.json exp/sweep_b.json \
        --executor=slurm --slurm_poll=1 2>&1); rc=$?
[[ $rc -eq 0 ]] || fail "sweep exited $rc: $out"
grep -q "job array [0-9]*: 2 experiments (--cpus-per-task=1 --time=10)" <<<"$out" || fail "not one array of 2: $out"
grep -Eq "^sweep_a +finished +[0-9]+_0 " <<<"$out" && grep -Eq "^sweep_b +finished +[0-9]+_1 " <<<"$out" ||
  fail "no finished summary: $out"
[[ -f "$ws/results/shards/sweep_a.db" && -f "$ws/results/shards/sweep_b.db" ]] || fail "no shards: $(ls -R "$ws/results")"
[[ $(runs_of "$db" sweep_a) -eq 1 && $(runs_of "$db" sweep_b) -eq 1 ]] || fail "merged: $("$query" --db="$db" runs)"
"$query" --db="$db" runs | grep -w sweep_a | grep -q finished || fail "sweep_a not finished: $("$query" --db="$db" runs)"
log=$(ls "$ws"/results/shards/jobs/*/logs/*_0.log | head -1)
grep -q "sweep_a: run 1 finished" "$log" || fail "job log: $(cat "$log")"
grep -q "== sweep_a: job [0-9]*_0 (restart 0)" "$log" || fail "job log has no header: $(cat "$log")"

# 2. Again: both are cache hits in their shards; the merge adds nothing.
out=$("$slurm" "$run" "$query" "$slurm_task" "$exp/sweep_a.json" "$exp/sweep_b.json" --slurm_poll=1 2>&1); rc=$?
[[ $rc -eq 0 ]] || fail "second sweep exited $rc: $out"
grep -q "0 runs added, 0 updated, 1 already in" <<<"$out" || fail "second merge wrote: $out"
log=$(ls -t "$ws"/results/shards/jobs/*/logs/*_1.log | head -1)
grep -q "cached result of run 1" "$log" || fail "no cache hit in the job: $(cat "$log")"
[[ $(runs_of "$db" sweep_a) -eq 1 && $(runs_of "$db" sweep_b) -eq 1 ]] || fail "duplicated: $("$query" --db="$db" runs)"

# 3. A run made outside Slurm is a cache hit in a new shard (seeded from the main database).
echo '{"name":"local_c","dataset":"synthetic","epochs":1,"train_subset":64,"batch_size":32}' > "$exp/local_c.json"
"$run" --threads=1 "$exp/local_c.json" >/dev/null 2>&1 || fail "local run failed"
out=$("$slurm" "$run" "$query" "$slurm_task" "$exp/local_c.json" --slurm_poll=1 2>&1) || fail "local_c sweep: $out"
log=$(ls -t "$ws"/results/shards/jobs/*/logs/*_0.log | head -1)
grep -q "cached result of run" "$log" || fail "a main-database run was trained again: $(cat "$log")"
[[ $(runs_of "$db" local_c) -eq 1 ]] || fail "local_c duplicated: $("$query" --db="$db" runs)"

# 4. The nightly through the executor: merges, exports the snapshot, renders the report.
echo '{"name":"t","paper":"impq2022","table":"CIFAR-10","dataset":"cifar10","experiments":[' \
     "$(cat "$exp/sweep_a.json")]}" > "$exp/t.table.json"
out=$("$nightly" "$run" "$render" "$query" "$slurm" "$slurm_task" "$exp/t.table.json" --executor=slurm --slurm_poll=1 2>&1); rc=$?
[[ $rc -eq 0 ]] || fail "nightly --executor=slurm exited $rc: $out"
grep -Eq "^sweep_a +finished" <<<"$out" || fail "nightly summary: $out"
grep -q '`sweep_a`' "$ws/reports/out/report.md" || fail "the report has no sweep_a row"
grep -q '"name":"sweep_a"' "$ws/results/published/snapshot.json" || fail "the snapshot has no sweep_a"

# 5. Requeued half-way: Slurm sends SIGTERM, the run is stored interrupted, the requeued
#    job resumes it from its checkpoint and finishes; merged once, every epoch once.
echo '{"name":"long","dataset":"synthetic","epochs":6,"train_subset":2048,"batch_size":64}' > "$exp/long.json"
out=$("$slurm" "$run" "$query" "$slurm_task" "$exp/long.json" --slurm_wait=false --force 2>&1) || fail "submit long: $out"
grep -q "not waiting" <<<"$out" || fail "no-wait message: $out"
read -r job jobdir < "$ws/results/shards/long.job"
log="$jobdir/logs/$job.log"
for _ in $(seq 240); do grep -q "^epoch 2/6" "$log" 2>/dev/null && break; sleep 0.5; done
grep -q "^epoch 2/6" "$log" || fail "long did not reach epoch 2: $(cat "$log" 2>&1)"
scontrol requeue "$job" || fail "scontrol requeue $job refused"
# A requeued job waits (BeginTime) before it is eligible again; make it eligible now, but
# not within the second its credential was revoked: slurmd compares whole seconds, and a
# relaunch in that same second is killed as "Job credential revoked" (CI, 2026-12-02).
# (StartTime=now+N instead would wait for the scheduler's next periodic pass, up to 60 s.)
for _ in $(seq 60); do
  state=$(squeue -h -r -j "${job%_*}" -o '%T %r' 2>/dev/null)
  [[ "$state" == PENDING* ]] && break
  sleep 0.5
done
sleep 2
scontrol update JobId="$job" StartTime=now >/dev/null 2>&1 || true
out=$("$slurm" "$run" "$query" "$slurm_task" "$exp/long.json" --slurm_poll=1 2>&1); rc=$?
[[ $rc -eq 0 ]] || fail "waiting for the requeued long exited $rc: $out"
grep -q "still queued or running as job $job" <<<"$out" || fail "long was submitted twice: $out"
grep -Eq "^long +finished +$job " <<<"$out" || fail "long not finished: $out"
grep -q "interrupted by SIGTERM" "$log" || fail "the runner did not record the SIGTERM: $(cat "$log")"
grep -q "restart 1" "$log" || fail "the job was not restarted: $(cat "$log")"
grep -q "long: resuming run 1 (interrupted)" "$log" || fail "the requeued job did not resume: $(cat "$log")"
! grep -q "^epoch 1/6" <(sed -n '/restart 1/,$p' "$log") || fail "the resumed run started over: $(cat "$log")"
[[ $(runs_of "$db" long) -eq 1 ]] || fail "long merged $(runs_of "$db" long) times"
id=$("$query" --db="$db" runs | awk '$2 == "long" {print $1}')
"$query" --db="$db" show "$id" | grep -Eq "metric val_top1 +6 points" || fail "epochs stored: $("$query" --db="$db" show "$id")"

# 6. experiment(slurm = dict(tasks = 2)): one job, srun starts 2 data-parallel ranks
#    (Gloo on loopback, docs/distributed.md); rank 0 writes the one run.
echo '{"name":"dp","dataset":"synthetic","epochs":2,"train_subset":256,"batch_size":64}' > "$exp/dp.json"
printf -- '--cpus-per-task=1\n--ntasks=2\n' > "$exp/dp.slurm"
out=$("$slurm" "$run" "$query" "$slurm_task" "$exp/dp.json" --slurm_poll=1 2>&1); rc=$?
[[ $rc -eq 0 ]] || fail "dp exited $rc: $out; $(cat "$(ls -t "$ws"/results/shards/jobs/*/logs/*.log | head -1)")"
read -r job jobdir < "$ws/results/shards/dp.job"
log="$jobdir/logs/$job.log"
grep -q "2 data-parallel ranks by srun" "$log" || fail "not launched as 2 ranks: $(cat "$log")"
[[ $(grep -c "^epoch 2/2" "$log") -eq 1 ]] || fail "expected one rank to print: $(cat "$log")"
[[ $(runs_of "$db" dp) -eq 1 ]] || fail "dp stored $(runs_of "$db" dp) runs"

# 7. Bad arguments: clear errors, exit 2.
out=$("$run_specs" "$run" "$query" "$slurm" "$slurm_task" "exp/sweep_a.json" --executor=pbs 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q "executor=pbs: expected local or slurm" <<<"$out" || fail "bad executor: exit $rc: $out"
out=$("$slurm" "$run" "$query" "$slurm_task" "$exp/none.json" 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q "none.json: no such spec file" <<<"$out" || fail "missing spec: exit $rc: $out"
out=$("$slurm" "$run" "$query" "$slurm_task" "$exp/sweep_a.json" --slurm_wait=maybe 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q "expected true or false" <<<"$out" || fail "bad --slurm_wait: exit $rc: $out"
out=$("$slurm" "$run" "$query" "$slurm_task" "$exp/sweep_a.json" --sbatch=--partition=nosuch 2>&1); rc=$?
[[ $rc -eq 2 ]] && grep -q "sbatch refused" <<<"$out" || fail "bad partition: exit $rc: $out"
echo "PASS"
