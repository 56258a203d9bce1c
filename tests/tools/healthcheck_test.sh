#!/usr/bin/env bash
# Smoke test: //tools:healthcheck links LibTorch (with Debian's glog/gflags), absl
# flags and SQLite into one binary; it must start, parse absl flags, run a tensor op
# on 2 threads, round-trip SQLite, and reject an unknown flag with a clear message.
set -uo pipefail
bin="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$bin" --threads=2 --probe=mpq-smoke 2>&1) || fail "healthcheck exited $?: $out"
echo "$out"
grep -q "flags: probe='mpq-smoke' threads=2" <<<"$out" || fail "absl flags were not parsed"
grep -q "intra-op threads 2" <<<"$out" || fail "torch thread count not applied"
grep -q "round trip 42" <<<"$out" || fail "sqlite round trip missing"
grep -q "healthcheck: OK" <<<"$out" || fail "no OK line"

if err=$("$bin" --no_such_flag=1 2>&1); then fail "an unknown flag was accepted"; fi
grep -q "Unknown command line flag 'no_such_flag'" <<<"$err" || fail "unclear unknown-flag message: $err"
echo "PASS"
