#!/usr/bin/env bash
# Data-parallel training with c10d's ProcessGroupGloo, two processes on loopback: the
# same loss curve and final weights as one process with the same global batch, both
# ranks bit-identical, and a real difference detected when the global batch differs
# (so the comparison can fail).
set -euo pipefail
worker="$1"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$worker" --out="$tmp/one.pt" --batch=32 --epochs=4 --lr=0.2 > "$tmp/one.log" 2>&1 || fail "one process: $(cat "$tmp/one.log")"
cat "$tmp/one.log"

run_pair() {  # run_pair OUT BATCH: two ranks, their exit codes checked
  local out="$1" batch="$2" port
  port=$("$worker" --free_port)
  export MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2
  RANK=0 timeout 300 "$worker" --out="$out" --batch="$batch" --epochs=4 --lr=0.2 > "$out.0.log" 2>&1 &
  local p0=$!
  RANK=1 timeout 300 "$worker" --out="$out" --batch="$batch" --epochs=4 --lr=0.2 > "$out.1.log" 2>&1 &
  local p1=$!
  local rc0=0 rc1=0
  wait $p0 || rc0=$?
  wait $p1 || rc1=$?
  unset MASTER_ADDR MASTER_PORT WORLD_SIZE
  cat "$out.0.log" "$out.1.log"
  [[ $rc0 -eq 0 && $rc1 -eq 0 ]] || fail "two ranks exited $rc0 and $rc1"
}

run_pair "$tmp/two.pt" 32
# Rank 1 started from other weights (dp_worker seeds it apart): after the broadcast and
# identical averaged steps the two ranks hold the same network, bit for bit.
"$worker" --compare "$tmp/two.pt" "$tmp/two.pt.rank1" --tolerance=0 || fail "the ranks' weights differ"
# Against one process with the same global batch of 32: float tolerance (the sums are
# taken in another order).
"$worker" --compare "$tmp/one.pt" "$tmp/two.pt" --tolerance=1e-4 || fail "two ranks differ from one process"
# A different global batch (2 x 16 is not 32): the comparison sees it.
run_pair "$tmp/two16.pt" 16
if "$worker" --compare "$tmp/one.pt" "$tmp/two16.pt" --tolerance=1e-4; then
  fail "a run with another batch size compared equal: the comparison cannot fail"
fi
echo "1 passed, 0 failed"
