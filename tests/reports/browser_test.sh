#!/usr/bin/env bash
# The report as a reader's browser shows it: //reports:render draws report.html from the
# committed snapshot (results/published/snapshot.json) and the boards, as a new user does
# right after cloning; headless Chromium (Debian's chromium, tools/setup.sh) opens it from
# disk through the DevTools protocol (browser_check.py): nothing is loaded from the
# network, no console error is logged, and every figure is drawn (its part of the
# screenshot is not blank). A broken page (a network image, console.error, an uncaught
# exception, a blank figure, a figure without SVG) must fail each check, so the checks can
# fail. The screenshot is kept in the test's undeclared outputs.
set -uo pipefail
render="$1"; check="$2"; snapshot="$3"; broken="$4"
fail() { echo "FAIL: $*" >&2; exit 1; }
out_dir="${TEST_UNDECLARED_OUTPUTS_DIR:-$TEST_TMPDIR}"
export HOME="$TEST_TMPDIR/home"  # chromium writes its caches under HOME
mkdir -p "$HOME"

# 1. The checks can fail: every planted problem is reported, and the exit status is 1.
out=$(/usr/bin/python3 "$check" "$broken" "$TEST_TMPDIR/broken.png" 2>&1); rc=$?
[[ $rc -eq 1 ]] || fail "the broken page passed (exit $rc): $out"
for want in "network load: http://example.invalid/x.png" "console error: boom" \
            "uncaught exception: ReferenceError" "figure 1 (blank one): blank" "figure 2 (no svg): no <svg>"; do
  grep -qF "$want" <<<"$out" || fail "the broken page's '$want' was not reported: $out"
done

# 2. The report from the committed snapshot.
out=$("$render" --snapshot="$snapshot" --out="$TEST_TMPDIR/report" 2>&1) || fail "render failed: $out"
html="$TEST_TMPDIR/report/report.html"
[[ -s "$html" ]] || fail "render wrote no report.html: $out"
md="$TEST_TMPDIR/report/report.md"
grep -q '^### Leaderboard `fmnist_board`' "$md" || fail "the report has no fmnist_board section"
grep -q "No paper_table() targets were given" "$md" && fail "the report found no paper tables"
figures=$(grep -c "<figure>" "$html")
(( figures >= 5 )) || fail "the report has $figures figures, expected the board's Pareto plot and the tables' plots"
out=$(/usr/bin/python3 "$check" "$html" "$out_dir/report.png" --min_figures="$figures" 2>&1); rc=$?
echo "$out"
[[ $rc -eq 0 ]] || fail "the report failed in the browser (exit $rc)"
echo "PASS: report.html from the snapshot: $figures figures drawn, no network load, no console error"
