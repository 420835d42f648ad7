#!/usr/bin/env bash
# Bad inputs to semaim-prep: each must end with exit status 1 (runtime) or 2 (command line),
# exactly one line on stderr naming the culprit, and no output left behind.
source "$(dirname "$0")/prep/lib.sh"
make_suite
S=$TMP/src
# expect NAME STATUS PATTERN -- command...
expect() {
  local name=$1 want=$2 pat=$3; shift 4
  rm -rf "$TMP/out"
  "$@" >"$TMP/stdout" 2>"$TMP/stderr"
  local rc=$? lines
  record_bad_input "$name" "$rc" "$TMP/stderr" semaim-prep
  lines=$(wc -l <"$TMP/stderr")
  if [ "$rc" = "$want" ] && [ "$lines" = 1 ] && grep -q "^semaim-prep.*$pat" "$TMP/stderr" && [ ! -e "$TMP/out/manifest.json" ] \
     && ! ls "$TMP/out"/train/*.h5 >/dev/null 2>&1; then
    pass "$name: exit $want, one line: $(cat "$TMP/stderr")"
  else
    bad "$name: exit $rc (want $want), $lines stderr lines: $(head -3 "$TMP/stderr" | tr '\n' '|')"
  fi
}
O="--out $TMP/out --progress none"
mkdir -p "$TMP/empty" "$TMP/flat/train" "$TMP/noimg/train/a" "$TMP/noimg/train/b"
touch "$TMP/flat/train/x.jpg" "$TMP/noimg/train/a/readme.txt" "$TMP/afile"
expect "missing source"        1 "--src $TMP/nope: No such file or directory" -- "$PREP" convert --src "$TMP/nope" $O
expect "source is a file"      1 "not a directory"                   -- "$PREP" convert --src "$TMP/afile" $O
expect "no train/"             1 "no train/ directory"               -- "$PREP" convert --src "$TMP/empty" $O
expect "train/ without class folders" 1 "train: no class folders"    -- "$PREP" convert --src "$TMP/flat" $O
expect "class folders without JPEGs"  1 "no .jpg/.jpeg files"         -- "$PREP" convert --src "$TMP/noimg" $O
expect "unknown option"        2 "unknown option '--colour'"         -- "$PREP" convert --src "$S" $O --colour
expect "non-integer shards"    2 "--train-shards: expected an integer in 0..99999, got 'ten'" -- "$PREP" convert --src "$S" $O --train-shards ten
expect "negative size"         2 "--size: expected an integer"       -- "$PREP" convert --src "$S" $O --size -3
expect "flag without value"    2 "--seed needs a value"              -- "$PREP" convert --src "$S" --out "$TMP/out" --seed
expect "missing --out"         2 "--out OUT is required"             -- "$PREP" convert --src "$S"
expect "val crop larger than resize" 2 "--val-resize 200 is smaller than --val-size 224" -- "$PREP" convert --src "$S" $O --store raw --val-resize 200
expect "unknown store"         2 "--store: expected jpeg or raw, got 'png'" -- "$PREP" convert --src "$S" $O --store png
expect "store without value"   2 "--store needs a value"             -- "$PREP" convert --src "$S" $O --store
expect "max-side zero"         2 "--max-side: expected an integer in 1..65500, got '0'" -- "$PREP" convert --src "$S" $O --max-side 0
expect "max-side not a number" 2 "--max-side: expected an integer in 1..65500, got '5l2'" -- "$PREP" convert --src "$S" $O --max-side 5l2
expect "max-side too large"    2 "--max-side: expected an integer in 1..65500, got '70000'" -- "$PREP" convert --src "$S" $O --max-side=70000
expect "quality zero"          2 "--quality: expected an integer in 1..100, got '0'" -- "$PREP" convert --src "$S" $O --quality 0
expect "quality above 100"     2 "--quality: expected an integer in 1..100, got '101'" -- "$PREP" convert --src "$S" $O --store jpeg --quality 101
expect "raw size with the default jpeg store" 2 "--size applies to --store raw only, and the default store is jpeg" -- "$PREP" convert --src "$S" $O --size 64
expect "raw flag with --store jpeg" 2 "--val-resize applies to --store raw only, not --store jpeg" -- "$PREP" convert --src "$S" $O --store jpeg --val-resize 300
expect "jpeg flag with --store raw" 2 "--quality applies to --store jpeg only, not --store raw" -- "$PREP" convert --src "$S" $O --quality 80 --store raw
expect "bad shard range"       2 "--shard-range: expected A:B"       -- "$PREP" convert --src "$S" $O --shard-range 7
expect "bad task"              2 "--task: expected I/N"              -- "$PREP" convert --src "$S" $O --task 3/3
expect "--task slurm outside Slurm" 2 "SLURM_ARRAY_TASK_ID is not set" -- env -u SLURM_ARRAY_TASK_ID "$PREP" convert --src "$S" $O --task slurm
expect "more shards than files" 1 "--train-shards 50 exceeds the 20 train files" -- "$PREP" convert --src "$S" $O --train-shards 50
expect "shard range past the end" 1 "selects no shard: there are 5"  -- "$PREP" convert --src "$S" $O --train-shards 3 --val-shards 2 --shard-range 5:9
expect "labels file missing"   1 "$TMP/nolabels.csv: No such file"   -- "$PREP" convert --src "$S" $O --train-shards 3 --val-shards 2 --val-labels "$TMP/nolabels.csv"
printf 'ImageId,PredictionString\nILSVRC2012_val_00000001 cls_a\n' >"$TMP/bad.csv"
expect "malformed labels file" 1 "bad.csv:2: expected 'ImageId,PredictionString'" -- "$PREP" convert --src "$S" $O --train-shards 3 --val-shards 2 --val-labels "$TMP/bad.csv"
printf '1\n2\n' >"$TMP/gt.txt"
expect "ground truth without class order" 1 "pass --val-class-order" -- "$PREP" convert --src "$S" $O --train-shards 3 --val-shards 2 --val-labels "$TMP/gt.txt"
mv "$S/LOC_val_solution.csv" "$TMP/loc.csv"
expect "flat val/ without labels" 1 "flat folder of JPEGs but no labels file" -- "$PREP" convert --src "$S" $O --train-shards 3 --val-shards 2
mv "$TMP/loc.csv" "$S/LOC_val_solution.csv"
expect "output path under a file" 1 "cannot create"                  -- "$PREP" convert --src "$S" --out "$TMP/afile/out" --train-shards 3 --val-shards 2 --progress none
expect "output inside the source tree" 1 "would put shards inside the source tree" -- "$PREP" convert --src "$S" --out "$S/train/shards" --progress none
expect "output is the source tree" 1 "would put shards inside the source tree" -- "$PREP" convert --src "$S" --out "$S/" --progress none
expect "bad crash-test variable" 1 "SEMAIM_PREP_CRASH_AFTER=soon"    -- env SEMAIM_PREP_CRASH_AFTER=soon "$PREP" convert --src "$S" $O
expect "verify: no manifest"   1 "manifest.json: No such file"       -- "$PREP" verify "$TMP/empty"
echo '{"format": "semaim-prep manifest", "shards": [' >"$TMP/empty/manifest.json"
expect "verify: manifest not JSON" 1 "not valid JSON"                -- "$PREP" verify "$TMP/empty"
echo '{"format": "something else"}' >"$TMP/empty/manifest.json"
expect "verify: not our manifest" 1 "not a semaim-prep manifest"     -- "$PREP" verify "$TMP/empty"
expect "verify: two directories" 2 "one output directory expected"   -- "$PREP" verify "$TMP/a" "$TMP/b"
expect "manifest: nothing converted" 1 "plan.json: No such file"     -- "$PREP" manifest "$TMP/empty"
expect "fmnist: missing IDX files" 1 "train-images-idx3-ubyte.gz: No such file" -- "$PREP" fmnist --src "$TMP/empty" --out "$TMP/out"
expect "fmnist: bad quality"   2 "--quality: expected an integer in 1..100" -- "$PREP" fmnist --src "$TMP/empty" --out "$TMP/out" --quality 0
expect "unknown command"       2 "unknown command 'transmogrify'"    -- "$PREP" transmogrify
for c in convert verify manifest fmnist; do
  "$PREP" $c --help >"$TMP/help" 2>&1 && grep -q "^usage: semaim-prep $c" "$TMP/help" || bad "$c --help"
done
pass "--help of every command prints its usage and exits 0"
finish
