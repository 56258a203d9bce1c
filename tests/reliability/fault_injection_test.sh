#!/usr/bin/env bash
# The fault-injection suite (docs/reliability.md): the runner and the query CLI, driven
# as a user would drive them, against damaged datasets, bad specs, kill -9 at random
# moments, concurrent and racing processes, full disks and databases that must be
# refused. Every case is classified:
#   clear   - non-zero exit (or, for a resume, the exact result) with a message naming
#             the problem; no run left "running", no temporary file left behind
#   crash   - a signal, an abort, a raw exception trace, a hang, or a run left "running"
#   silent  - accepted (exit 0) although it should have been refused, or a wrong result
#   unclear - refused, but the message does not name the problem
# and a table of the counts per class is printed. The test fails on any crash, silent
# acceptance or unclear message. Kill moments are drawn from a seeded generator
# (MPQ_FAULT_SEED, default 20261201) and printed, so a failure can be replayed.
#
#   bazel test //tests/reliability:fault_injection_test --test_output=all   # alone
#   bazel test //... --test_tag_filters=reliability                         # by tag
set -uo pipefail
run="$(realpath "$1")"
query="$(realpath "$2")"
seed="${MPQ_FAULT_SEED:-20261201}"
RANDOM=$seed
tmp="${TEST_TMPDIR:-$(mktemp -d)}/faults"
rm -rf "$tmp"
mkdir -p "$tmp"
export BUILD_WORKSPACE_DIRECTORY="$tmp/ws"
mkdir -p "$BUILD_WORKSPACE_DIRECTORY/results"
db="$BUILD_WORKSPACE_DIRECTORY/results/mpqbench.db"
fmnist=/usr/share/datasets/fashion-mnist
mounts=()
cleanup() { for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null; done; }
trap cleanup EXIT

classes=(datasets specs state kills races identity disk databases)
declare -A tried clear crash silent unclear
for c in "${classes[@]}"; do tried[$c]=0 clear[$c]=0 crash[$c]=0 silent[$c]=0 unclear[$c]=0; done
problems=()
note() { problems+=("$1"); echo "  !! $1"; }
count() { tried[$1]=$((tried[$1] + 1)); eval "$2[\$1]=\$(( $2[\$1] + 1 ))"; }

spec() { printf '%s' "$2" > "$tmp/$1.json"; echo "$tmp/$1.json"; }
runs_in() { "$query" --db="$1" runs 2>/dev/null; }
status_count() {  # status_count DB STATUS [NAME]
  "$query" --db="$1" export --csv --table=runs 2>/dev/null |
    awk -F, -v s="$2" -v n="${3:-}" 'NR > 1 && $0 ~ "," s "," && (n == "" || $2 == n)' | wc -l
}
crashed() {  # crashed RC OUTPUT: a signal, a timeout, or LibTorch/C++ trace text
  (( $1 > 2 )) || grep -Eq "terminate called|Exception raised from|Aborted|Segmentation fault|what\(\):|frame #" <<<"$2"
}
leftovers() { find "$BUILD_WORKSPACE_DIRECTORY/results" "$@" -name '*.tmp' 2>/dev/null | head -1; }

# expect_refused CLASS NAME PATTERN DB -- COMMAND...: must fail (exit 1 or 2) with a
# message matching PATTERN, leave no run "running" and no temporary file.
expect_refused() {
  local cls=$1 name=$2 pattern=$3 d=$4
  shift 5
  local out rc
  out=$(timeout 120 "$@" 2>&1); rc=$?
  if crashed "$rc" "$out"; then
    count "$cls" crash; note "$cls/$name: crashed (exit $rc): $(tail -3 <<<"$out" | tr '\n' ' ')"
  elif (( rc == 0 )); then
    count "$cls" silent; note "$cls/$name: accepted without error"
  elif [[ -e "$d" ]] && (( $(status_count "$d" running) > 0 )); then
    count "$cls" crash; note "$cls/$name: exit $rc but a run is left 'running'"
  elif [[ -n "$(leftovers)" ]]; then
    count "$cls" crash; note "$cls/$name: left $(leftovers) behind"
  elif grep -Eq -- "$pattern" <<<"$out"; then
    count "$cls" clear
  else
    count "$cls" unclear; note "$cls/$name: exit $rc, message does not match /$pattern/: $(tail -2 <<<"$out" | tr '\n' ' ')"
  fi
}

be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
# A small Fashion-MNIST directory (uncompressed IDX) with the first N train / M test examples.
make_fmnist() {  # make_fmnist DIR N M
  mkdir -p "$1"
  local split n
  for split in train t10k; do
    n=$2; [[ $split == t10k ]] && n=$3
    { printf '\x00\x00\x08\x03'; be32 "$n"; be32 28; be32 28
      gzip -dc "$fmnist/$split-images-idx3-ubyte.gz" | tail -c +17 | head -c $((n * 784)); } > "$1/$split-images-idx3-ubyte"
    { printf '\x00\x00\x08\x01'; be32 "$n"
      gzip -dc "$fmnist/$split-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$n"; } > "$1/$split-labels-idx1-ubyte"
  done
}
flip() { printf '\xa5\x5a\xa5\x5a\xa5\x5a\xa5\x5a\xa5\x5a\xa5\x5a\xa5\x5a\xa5\x5a\xa5\x5a\xa5\x5a' |
         dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }  # 20 bytes at offset $2

echo "fault-injection suite, seed $seed"

# ---------------------------------------------------------------------------------------
echo "== [${SECONDS}s] datasets: corrupted and truncated files"
tiny="$tmp/data/tiny"
make_fmnist "$tiny" 600 200
data_case() {  # data_case NAME PATTERN MUTATION...: a copy of $tiny, mutated, must be refused
  local name=$1 pattern=$2 dir="$tmp/data/$1"
  shift 2
  rm -rf "$dir"; cp -r "$tiny" "$dir"
  (cd "$dir" && eval "$*")
  expect_refused datasets "$name" "$pattern" "$db" -- "$run" --threads=2 \
    "$(spec "data_$name" "{\"name\":\"data_$name\",\"dataset\":\"fashion_mnist\",\"data_dir\":\"$dir\",\"epochs\":1}")"
}
data_case truncated_images "train-images-idx3-ubyte" 'head -c 100000 train-images-idx3-ubyte > x && mv x train-images-idx3-ubyte'
data_case empty_labels "train-labels-idx1-ubyte" ': > train-labels-idx1-ubyte'
data_case bad_magic "t10k-images-idx3-ubyte" 'printf "\x00\x00\x09\x03" | dd of=t10k-images-idx3-ubyte bs=1 conv=notrunc status=none'
data_case label_out_of_range "train-labels-idx1-ubyte" 'printf "\x0c" | dd of=train-labels-idx1-ubyte bs=1 seek=20 conv=notrunc status=none'
data_case count_mismatch "t10k-labels-idx1-ubyte" 'head -c 108 t10k-labels-idx1-ubyte > x && mv x t10k-labels-idx1-ubyte && printf "\x00\x00\x00\x64" | dd of=t10k-labels-idx1-ubyte bs=1 seek=4 conv=notrunc status=none'
data_case missing_file "t10k-labels-idx1-ubyte" 'rm t10k-labels-idx1-ubyte'
data_case directory_for_file "train-images-idx3-ubyte" 'rm train-images-idx3-ubyte && mkdir train-images-idx3-ubyte'
data_case gzip_flipped "train-images-idx3-ubyte.gz" 'gzip -c train-images-idx3-ubyte > train-images-idx3-ubyte.gz && rm train-images-idx3-ubyte && flip train-images-idx3-ubyte.gz 5000'
data_case gzip_truncated "train-labels-idx1-ubyte.gz" 'gzip -c train-labels-idx1-ubyte | head -c 200 > train-labels-idx1-ubyte.gz && rm train-labels-idx1-ubyte'
cifar="$tmp/data/cifar"
mkdir -p "$cifar"
for i in 1 2 3 4 5; do head -c $((3073 * 20)) /dev/zero > "$cifar/data_batch_$i.bin"; done
head -c $((3073 * 20)) /dev/zero > "$cifar/test_batch.bin"
head -c 5000 /dev/zero > "$cifar/data_batch_3.bin"
expect_refused datasets cifar_bad_size "data_batch_3.bin.*3073" "$db" -- "$run" \
  "$(spec cifar_size "{\"name\":\"cifar_size\",\"dataset\":\"cifar10\",\"data_dir\":\"$cifar\",\"epochs\":1}")"
head -c $((3073 * 20)) /dev/zero > "$cifar/data_batch_3.bin"
printf '\x0b' | dd of="$cifar/test_batch.bin" bs=1 seek=$((3073 * 7)) conv=notrunc status=none
expect_refused datasets cifar_bad_label "test_batch.bin: record 7 has label 11" "$db" -- "$run" \
  "$(spec cifar_label "{\"name\":\"cifar_label\",\"dataset\":\"cifar10\",\"data_dir\":\"$cifar\",\"epochs\":1}")"
rm "$cifar/test_batch.bin"
expect_refused datasets cifar_missing "test_batch.bin not found" "$db" -- "$run" \
  "$(spec cifar_missing "{\"name\":\"cifar_missing\",\"dataset\":\"cifar10\",\"data_dir\":\"$cifar\",\"epochs\":1}")"
expect_refused datasets missing_dir "$tmp/data/nowhere" "$db" -- "$run" \
  "$(spec nowhere "{\"name\":\"nowhere\",\"dataset\":\"fashion_mnist\",\"data_dir\":\"$tmp/data/nowhere\",\"epochs\":1}")"

# ---------------------------------------------------------------------------------------
echo "== [${SECONDS}s] specs: values, types, combinations and paths that cannot work"
bad_spec() {  # bad_spec NAME PATTERN JSON
  expect_refused specs "$1" "$2" "$db" -- "$run" --threads=2 "$(spec "spec_$1" "$3")"
}
base='"dataset":"synthetic","epochs":1,"train_subset":64,"batch_size":32'
bad_spec lr_1e999 "number overflow parsing '1e999'" "{\"name\":\"s\",$base,\"lr\":1e999}"
bad_spec lr_1e308 '"lr".*out of range' "{\"name\":\"s\",$base,\"lr\":1e308}"
bad_spec momentum_negative '"momentum".*out of range' "{\"name\":\"s\",$base,\"momentum\":-1}"
bad_spec weight_decay_negative '"weight_decay".*out of range' "{\"name\":\"s\",$base,\"weight_decay\":-0.1}"
bad_spec epochs_string '"epochs"' "{\"name\":\"s\",\"dataset\":\"synthetic\",\"epochs\":\"three\"}"
bad_spec epochs_fraction '"epochs"' "{\"name\":\"s\",\"dataset\":\"synthetic\",\"epochs\":1.5}"
bad_spec duplicate_key '"epochs" is given twice' "{\"name\":\"s\",\"dataset\":\"synthetic\",\"epochs\":-1,\"epochs\":1}"
bad_spec batch_1e12 '"batch_size": expected .* integer' "{\"name\":\"s\",\"dataset\":\"synthetic\",\"batch_size\":1e12}"
bad_spec batch_int64_max '"batch_size".*out of range' "{\"name\":\"s\",\"dataset\":\"synthetic\",\"batch_size\":9223372036854775807}"
bad_spec hwgq_8_bits 'hwgq' "{\"name\":\"s\",$base,\"weight_quantizer\":\"hwgq\",\"weight_bits\":8}"
bad_spec bits_without_quantizer '"weight_bits"' "{\"name\":\"s\",$base,\"weight_quantizer\":\"none\",\"weight_bits\":4}"
bad_spec act_bits_without_quantizer '"act_bits"' "{\"name\":\"s\",$base,\"act_bits\":4}"
bad_spec image_200000 '"image_size"' "{\"name\":\"s\",$base,\"image_size\":200000}"
bad_spec vgg_small_16 '"image_size"' "{\"name\":\"s\",$base,\"model\":\"vgg_small\",\"image_size\":16}"
bad_spec fmnist_16 '"image_size"' "{\"name\":\"s\",\"dataset\":\"fashion_mnist\",\"epochs\":1,\"image_size\":16}"
bad_spec other_methods_options '"edmips"' "{\"name\":\"s\",$base,\"method\":\"impq\",\"edmips\":{\"search_epochs\":1}}"
bad_spec unknown_method '"method"' "{\"name\":\"s\",$base,\"method\":\"magic\"}"
bad_spec unknown_paper_row "\"paper_row\": 'no-such-paper/row' is not a row" "{\"name\":\"s\",$base,\"paper_row\":\"no-such-paper/row\"}"
bad_spec unknown_key '"epoch": unknown key' "{\"name\":\"s\",\"dataset\":\"synthetic\",\"epoch\":1}"
bad_spec not_json 'JSON|parse' '{"name": "s", '
bad_spec not_an_object 'object' '[1, 2, 3]'
bad_spec impq_wrong_type '"impq.max_iterations"' "{\"name\":\"s\",$base,\"method\":\"impq\",\"impq\":{\"max_iterations\":\"two\"}}"
{ printf '{"name":"deep","a":'; head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'; printf '}'; } > "$tmp/deep.json"
expect_refused specs deep_nesting 'nested deeper than 64 levels' "$db" -- "$run" "$tmp/deep.json"
mkfifo "$tmp/fifo.json"
expect_refused specs fifo_path 'fifo.json: not a regular file' "$db" -- "$run" "$tmp/fifo.json"
mkdir -p "$tmp/a,b"; printf '{"name":"c","epoch":1}' > "$tmp/a,b/c.json"
expect_refused specs comma_path 'a,b/c.json: "epoch": unknown key' "$db" -- "$run" "$tmp/a,b/c.json"
expect_refused specs missing_path 'no_such.json' "$db" -- "$run" "$tmp/no_such.json"

# ---------------------------------------------------------------------------------------
echo "== [${SECONDS}s] kills: kill -9 at random moments, resumed, equal to an uninterrupted run"
kspec='"dataset":"synthetic","epochs":2,"train_subset":256,"validation_fraction":0.05,"batch_size":64,"lr":0.02,"weight_bits":4,"method":"impq","impq":{"weight_schedule":"0:150","max_iterations":2,"finetune_epochs":1,"finetune_lr":0.01,"eval_fraction":0.02}'
ref_db="$tmp/ref.db"
t0=$(date +%s%N)
out=$("$run" --db="$ref_db" --threads=2 "$(spec kill_ref "{\"name\":\"kill\",$kspec}")" 2>&1) || { echo "$out"; echo "FAIL: reference run failed"; exit 1; }
duration_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# What a run stores, without run ids, wall times and throughput (measured, not computed).
fingerprint_of() {  # fingerprint_of DB RUN
  { "$query" --db="$1" export --csv --table=metrics | awk -F, -v r="$2" '$1 == r && $4 != "images_per_second" {print $2, $3, $4, $5}' | sort
    "$query" --db="$1" export --csv --table=results | awk -F, -v r="$2" '$1 == r' | cut -d, -f2-
    "$query" --db="$1" export --csv --table=allocations | awk -F, -v r="$2" '$1 == r' | cut -d, -f2- | sort
  } | sha256sum | cut -c1-16
}
ref=$(fingerprint_of "$ref_db" 1)
kill_db="$tmp/kill.db"
kills=8
echo "  reference run: ${duration_ms} ms, fingerprint $ref; $kills kills"
for k in $(seq 1 $kills); do
  delay_ms=$(( 300 + RANDOM % (duration_ms - 300) ))
  "$run" --db="$kill_db" --threads=2 "$tmp/kill_ref.json" > "$tmp/kill_$k.log" 2>&1 &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  echo "  kill $k after ${delay_ms} ms: $(grep -Ec 'point [0-9]+:' "$tmp/kill_$k.log") points printed"
done
out=$(timeout 300 "$run" --db="$kill_db" --threads=2 "$tmp/kill_ref.json" 2>&1); rc=$?
got=$(fingerprint_of "$kill_db" 1)
dups=$("$query" --db="$kill_db" export --csv --table=metrics | awk -F, 'NR > 1 {print $1, $2, $4}' | sort | uniq -d | wc -l)
n_ref=$("$query" --db="$ref_db" export --csv --table=metrics | wc -l)
n_got=$("$query" --db="$kill_db" export --csv --table=metrics | wc -l)
# The kills are judged together: the run they interrupted must end finished, once, with
# every metric stored exactly once and everything equal to the uninterrupted run.
verdict=clear
if crashed "$rc" "$out"; then
  verdict=crash; note "kills: the final resume crashed (exit $rc)"
elif (( rc != 0 )); then
  verdict=unclear; note "kills: the final resume failed (exit $rc): $(tail -2 <<<"$out" | tr '\n' ' ')"
elif (( $(status_count "$kill_db" finished) != 1 || $(status_count "$kill_db" running) != 0 )); then
  verdict=silent; note "kills: expected exactly one finished run: $(runs_in "$kill_db")"
elif (( dups != 0 || n_ref != n_got )); then
  verdict=silent; note "kills: $n_got metric rows after resumes, $n_ref uninterrupted, $dups duplicated keys"
elif [[ "$got" != "$ref" ]]; then
  verdict=silent; note "kills: resumed run differs from the uninterrupted one ($got vs $ref)"
fi
for k in $(seq 1 $kills); do count kills $verdict; done

# ---------------------------------------------------------------------------------------
echo "== [${SECONDS}s] state: damaged checkpoints and allocator state are named, never resumed silently"
state_db="$tmp/state.db"
state_case() {  # state_case NAME WAIT-GLOB FILE MUTATION: kill once WAIT exists, damage FILE, resume
  local name=$1 glob=$2 target=$3 mutation=$4
  rm -f "$state_db"*
  local ws_old=$BUILD_WORKSPACE_DIRECTORY
  export BUILD_WORKSPACE_DIRECTORY="$tmp/ws_state_$name"
  mkdir -p "$BUILD_WORKSPACE_DIRECTORY/results"
  "$run" --db="$state_db" --threads=2 "$tmp/kill_ref.json" > "$tmp/state_$name.log" 2>&1 &
  local pid=$! f=""
  for _ in $(seq 1 600); do
    f=$(compgen -G "$BUILD_WORKSPACE_DIRECTORY/results/checkpoints/*/run_1/$glob" | head -1)
    [[ -n "$f" ]] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  if [[ -n "$f" ]]; then
    f="$(dirname "$f")/$target"
    eval "$mutation"
    expect_refused state "$name" "$(basename "$f").*(damaged|checksum|trailer)" "$state_db" -- \
      "$run" --db="$state_db" --threads=2 "$tmp/kill_ref.json"
    (( $(status_count "$state_db" failed) == 1 )) || note "state/$name: the run is not marked failed: $(runs_in "$state_db")"
  else
    count state unclear; note "state/$name: $glob never appeared"
  fi
  export BUILD_WORKSPACE_DIRECTORY=$ws_old
}
state_case last_flipped "last.pt" last.pt 'flip "$f" 2000'
state_case last_truncated "last.pt" last.pt 'head -c 3000 "$f" > "$f.cut" && mv "$f.cut" "$f"'
state_case impq_state_flipped "alloc/state.json" state.json 'flip "$f" 10'
# Once iteration 1 has begun, point 0's model is what a resume loads first.
state_case impq_point_truncated "alloc/iter_1/reduced.pt" ../point_0.pt ': > "$f"'

# ---------------------------------------------------------------------------------------
echo "== [${SECONDS}s] races: concurrent writers, the same spec twice at once, and just as it finishes"
race_db="$tmp/race.db"
rspec="$(spec race "{\"name\":\"race\",\"dataset\":\"synthetic\",\"epochs\":1,\"train_subset\":256,\"batch_size\":64}")"
t0=$(date +%s%N)
"$run" --db="$tmp/race_timing.db" --threads=1 "$rspec" > /dev/null 2>&1
race_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
outcome() {  # outcome RC OUTPUT: ran, cached, busy or other
  if (( $1 == 0 )) && grep -q "race: run 1 finished" <<<"$2"; then echo ran
  elif (( $1 == 0 )) && grep -q "cached result of run 1" <<<"$2"; then echo cached
  elif (( $1 == 1 )) && grep -q "another process is running this spec" <<<"$2"; then echo busy
  else echo other; fi
}
for delay_ms in 0 $((race_ms / 2)) $((race_ms > 300 ? race_ms - 300 : 0)) $((race_ms > 100 ? race_ms - 100 : 0)) $race_ms; do
  rm -f "$race_db"*
  "$run" --db="$race_db" --threads=1 "$rspec" > "$tmp/race_a.log" 2>&1 &
  a=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  out_b=$("$run" --db="$race_db" --threads=1 "$rspec" 2>&1); rc_b=$?
  wait $a; rc_a=$?
  out_a=$(cat "$tmp/race_a.log")
  pair="$(outcome $rc_a "$out_a")+$(outcome $rc_b "$out_b")"
  echo "  second process after ${delay_ms} ms: $pair"
  if crashed "$rc_a" "$out_a" || crashed "$rc_b" "$out_b"; then
    count races crash; note "races/same_spec_${delay_ms}ms: crashed"
  elif (( $(status_count "$race_db" finished) != 1 || $(status_count "$race_db" running) != 0 )); then
    count races silent; note "races/same_spec_${delay_ms}ms: $pair: $(runs_in "$race_db")"
  elif [[ $pair == ran+cached || $pair == ran+busy || $pair == busy+ran ]]; then
    count races clear
  else
    count races unclear; note "races/same_spec_${delay_ms}ms: $pair: $(tail -2 <<<"$out_b" | tr '\n' ' ')"
  fi
done
# Different specs into one database at once: all finish, each stored once.
rm -f "$race_db"*
pids=()
for i in 1 2 3; do
  "$run" --db="$race_db" --threads=1 "$(spec "par_$i" "{\"name\":\"par_$i\",\"dataset\":\"synthetic\",\"epochs\":1,\"train_subset\":128,\"batch_size\":64,\"seed\":$i}")" > "$tmp/par_$i.log" 2>&1 &
  pids+=($!)
done
ok=1
for p in "${pids[@]}"; do wait "$p" || ok=0; done
dups=$("$query" --db="$race_db" export --csv --table=metrics | awk -F, 'NR > 1 {print $1, $2, $4}' | sort | uniq -d | wc -l)
if (( ok && $(status_count "$race_db" finished) == 3 && dups == 0 )); then count races clear
else count races silent; note "races/concurrent_writers: $(runs_in "$race_db")"; fi

# ---------------------------------------------------------------------------------------
echo "== [${SECONDS}s] identity: the cache, the data it was computed on, and --force"
id_db="$tmp/identity.db"
ispec() { spec "id_$1" "{\"name\":\"id\",\"dataset\":\"fashion_mnist\",\"data_dir\":\"$2\",\"epochs\":1,\"batch_size\":64}"; }
expect_ok() {  # expect_ok CLASS NAME PATTERN -- COMMAND...: must succeed and print PATTERN
  local cls=$1 name=$2 pattern=$3; shift 4
  local out rc
  out=$(timeout 300 "$@" 2>&1); rc=$?
  if crashed "$rc" "$out"; then count "$cls" crash; note "$cls/$name: crashed (exit $rc)"
  elif (( rc == 0 )) && grep -Eq -- "$pattern" <<<"$out"; then count "$cls" clear
  else count "$cls" silent; note "$cls/$name: exit $rc, expected /$pattern/: $(tail -3 <<<"$out" | tr '\n' ' ')"; fi
}
cp -r "$tiny" "$tmp/data/copy"
cp -r "$tiny" "$tmp/data/changed"
printf '\x03' | dd of="$tmp/data/changed/train-labels-idx1-ubyte" bs=1 seek=100 conv=notrunc status=none
touch -d '2020-01-01' "$tmp/data/changed/train-labels-idx1-ubyte"  # an old mtime does not hide a change
expect_ok identity first_run "id: run 1 finished" -- "$run" --db="$id_db" --threads=2 "$(ispec a "$tiny")"
expect_ok identity same_data_cached "cached result of run 1" -- "$run" --db="$id_db" --threads=2 "$(ispec a "$tiny")"
expect_ok identity copied_data_cached "cached result of run 1" -- "$run" --db="$id_db" --threads=2 "$(ispec b "$tmp/data/copy")"
expect_ok identity changed_data_reruns "id: run 2 finished" -- "$run" --db="$id_db" --threads=2 "$(ispec c "$tmp/data/changed")"
expect_refused identity missing_data_not_cached "$tmp/data/gone" "$id_db" -- "$run" --db="$id_db" "$(ispec d "$tmp/data/gone")"
expect_ok identity force_starts_from_nothing "id: run 3 \\(spec" -- "$run" --db="$id_db" --threads=2 --force "$(ispec a "$tiny")"
n_force=$("$query" --db="$id_db" export --csv --table=metrics | awk -F, '$1 == 3 && $4 == "train_loss"' | wc -l)
(( n_force == 1 )) || note "identity: --force stored $n_force training epochs, expected 1 (did it reuse state?)"
# A fresh database in the same workspace never sees another database's state.
expect_ok identity fresh_database "id: run 1 \\(spec" -- "$run" --db="$tmp/identity2.db" --threads=2 "$(ispec a "$tiny")"
n_train=$("$query" --db="$tmp/identity2.db" export --csv --table=metrics | awk -F, '$4 == "train_loss"' | wc -l)
if (( n_train == 1 )); then count identity clear; else count identity silent; note "identity: fresh database stored $n_train training epochs, expected 1"; fi

# ---------------------------------------------------------------------------------------
echo "== [${SECONDS}s] disk: a full file system under checkpoints and under the database"
if mkdir -p "$tmp/small" && mount -t tmpfs -o size=1m tmpfs "$tmp/small" 2>/dev/null; then
  mounts+=("$tmp/small")
  disk_db="$tmp/disk.db"
  # Checkpoints on a 1 MiB file system: the first last.pt does not fit.
  mkdir -p "$tmp/small/ws/results"
  dspec="$(spec disk "{\"name\":\"disk\",\"dataset\":\"synthetic\",\"epochs\":1,\"train_subset\":128,\"batch_size\":64}")"
  export BUILD_WORKSPACE_DIRECTORY="$tmp/small/ws"
  expect_refused disk checkpoint_full "No space left on device" "$disk_db" -- "$run" --db="$disk_db" --threads=2 "$dspec"
  (( $(status_count "$disk_db" failed) == 1 )) || note "disk: the run is not marked failed: $(runs_in "$disk_db")"
  # With room again, the failed run resumes and finishes.
  mount -o remount,size=64m "$tmp/small"
  expect_ok disk resumes_with_room "disk: resuming run 1 \\(failed\\)" -- "$run" --db="$disk_db" --threads=2 "$dspec"
  export BUILD_WORKSPACE_DIRECTORY="$tmp/ws"
  # The database itself on a full file system: a clear error; with room, it works.
  rm -rf "${tmp:?}/small/"*
  mount -o remount,size=64k "$tmp/small"
  head -c 40000 /dev/zero > "$tmp/small/filler" 2>/dev/null
  expect_refused disk database_full "full|No space" "" -- "$run" --db="$tmp/small/full.db" --threads=2 "$dspec"
  mount -o remount,size=64m "$tmp/small"
  expect_ok disk database_usable_with_room "disk: run 1 finished" -- "$run" --db="$tmp/small/full.db" --threads=2 "$dspec"
else
  note "disk: cannot mount a tmpfs (the suite needs root); the class was not tried"
fi

# ---------------------------------------------------------------------------------------
echo "== [${SECONDS}s] databases: refused files are left byte-identical; read-only media can be queried"
good_db="$tmp/good.db"
"$run" --db="$good_db" --threads=2 "$(spec good '{"name":"good","dataset":"synthetic","epochs":1,"train_subset":64,"batch_size":64}')" > /dev/null 2>&1
db_case() {  # db_case NAME PATTERN MUTATION: a mutated copy of good.db must be refused, untouched
  local name=$1 pattern=$2 f="$tmp/db_$1.db"
  cp "$good_db" "$f"
  # In rollback-journal mode (header bytes 18-19 = 1): a build that switched it to WAL
  # before refusing it would change the file.
  printf '\x01\x01' | dd of="$f" bs=1 seek=18 conv=notrunc status=none
  eval "$3"
  local before; before=$(sha256sum "$f" | cut -c1-64)
  expect_refused databases "$name" "$pattern" "" -- "$run" --db="$f" --threads=2 "$tmp/good.json"
  expect_refused databases "${name}_query" "$pattern" "" -- "$query" --db="$f" runs
  if [[ "$(sha256sum "$f" | cut -c1-64)" != "$before" ]]; then
    count databases silent; note "databases/$name: the refused file was modified"
  else
    count databases clear
  fi
}
db_case not_a_database "not a database|damaged" 'printf "these are my notes\n%.0s" $(seq 1 400) > "$f"'
db_case newer_schema "schema version 99 is newer" 'printf "\x00\x00\x00\x63" | dd of="$f" bs=1 seek=60 conv=notrunc status=none'
db_case foreign_application "not an mpqbench database" 'printf "\x12\x34\x56\x78" | dd of="$f" bs=1 seek=68 conv=notrunc status=none'
db_case damaged_pages "damaged|malformed" 'page=$((0x$(od -An -tx1 -j16 -N2 "$f" | tr -d " ")));
  for p in 2 3 4 5 6 7 8; do head -c 64 /dev/zero | tr "\0" "\245" | dd of="$f" bs=1 seek=$((p * page)) conv=notrunc status=none; done'
if mkdir -p "$tmp/ro" && mount -t tmpfs -o size=16m tmpfs "$tmp/ro" 2>/dev/null; then
  mounts+=("$tmp/ro")
  cp "$good_db" "$tmp/ro/good.db"
  mount -o remount,ro "$tmp/ro"
  expect_ok databases read_only_query "good +finished" -- "$query" --db="$tmp/ro/good.db" runs
  expect_refused databases read_only_run "good.db|read-only|readonly" "" -- "$run" --db="$tmp/ro/good.db" --force "$tmp/good.json"
else
  note "databases: cannot mount a read-only tmpfs (the suite needs root); read-only media not tried"
fi

# ---------------------------------------------------------------------------------------
echo
printf '%-10s %6s %6s %6s %7s %8s\n' class tried clear crash silent unclear
total_bad=0
for c in "${classes[@]}"; do
  printf '%-10s %6d %6d %6d %7d %8d\n' "$c" "${tried[$c]}" "${clear[$c]}" "${crash[$c]}" "${silent[$c]}" "${unclear[$c]}"
  total_bad=$((total_bad + crash[$c] + silent[$c] + unclear[$c]))
  (( tried[$c] > 0 )) || { total_bad=$((total_bad + 1)); problems+=("$c: no case tried"); }
done
if (( total_bad > 0 || ${#problems[@]} > 0 )); then
  printf 'FAIL: %s\n' "${problems[@]}"
  exit 1
fi
echo "PASS (seed $seed)"
