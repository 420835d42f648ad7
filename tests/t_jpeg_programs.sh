#!/usr/bin/env bash
# Every program on JPEG shards (semaim-prep's default store): Fashion-MNIST JPEGs (grayscale,
# so every file is re-encoded as RGB) -> jpeg shards -> semaim-train on 2 ranks, and the same
# losses on 1 rank with the same global batch (the crops depend on (seed, epoch, id) only) ->
# semaim-eval knn on the fly (2 ranks) equal to k-NN from features files (1 rank), the linear
# probe, and semaim-finetune with its evaluation, stopped and resumed bit-exactly (the loader's
# seek on jpeg shards).
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
FM=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
prep=$PWD/bin/semaim-prep train=$PWD/bin/semaim-train ev=$PWD/bin/semaim-eval ft=$PWD/bin/semaim-finetune
for b in "$prep" "$train" "$ev" "$ft"; do [ -x "$b" ] || { echo "FAIL: jpeg_programs.binaries ($b not built)"; exit 1; }; done
[ -f "$FM/train-images-idx3-ubyte.gz" ] || { echo "FAIL: jpeg_programs.fashion_mnist ($FM missing: apt install dataset-fashion-mnist)"; exit 1; }
scratch w tjpegp
run() { local np=$1; shift; timeout 300 mpirun -np "$np" "$@"; }
"$prep" fmnist --src "$FM" --out "$w/jpeg" --limit 240 --threads 2 >/dev/null 2>"$w/prep.err" &&
"$prep" convert --src "$w/jpeg" --out "$w/shards" --train-shards 3 --val-shards 2 --threads 2 --progress none \
  >/dev/null 2>>"$w/prep.err" || { bad "jpeg_programs.prep ($(tail -1 "$w/prep.err"))"; exit 1; }
check "jpeg_programs.shards_are_jpeg" bash -c "h5dump -a store '$w/shards/train/train-00000-of-00003.h5' | grep -q '\"jpeg\"'"
M="--image 32 --patch 8 --width 32 --depth 2 --dec-depth 1 --heads 2 --warmup-steps 2 --log-every 100 --seed 5"
run 2 "$train" --data "$w/shards" --out "$w/pre2" $M --batch 8 --steps 6 >/dev/null 2>"$w/pre2.err" &&
run 1 "$train" --data "$w/shards" --out "$w/pre1" $M --batch 16 --steps 6 --assign deal >/dev/null 2>"$w/pre1.err" ||
  { bad "jpeg_programs.pretrain ($(head -1 "$w/pre2.err" "$w/pre1.err" | tr '\n' ' '))"; exit 1; }
losses() { $PY -c "import json,sys; print(' '.join('%.5f' % e['loss'] for e in map(json.loads, open(sys.argv[1])) if e['event'] == 'step'))" "$1/metrics.jsonl"; }
l2=$(losses "$w/pre2"); l1=$(losses "$w/pre1")
# 2 ranks by auto assignment deal here too (3 shards < 90 % kept by shard), so both read the same samples
check "jpeg_programs.train_same_losses_1_and_2_ranks ($l2 | $l1)" [ -n "$l2" ] && [ "$l2" = "$l1" ]
ck=$w/pre2/ckpt-00000006.bin
run 2 "$ev" knn --checkpoint "$ck" --data "$w/shards" --k 5 > "$w/knn.out" 2>"$w/knn.err" || bad "jpeg_programs.knn ($(head -1 "$w/knn.err"))"
for s in train val; do
  run 2 "$ev" features --checkpoint "$ck" --data "$w/shards" --split $s --out "$w/$s.h5" >/dev/null 2>"$w/f.err" ||
    bad "jpeg_programs.features_$s ($(head -1 "$w/f.err"))"
done
run 1 "$ev" knn --train-features "$w/train.h5" --val-features "$w/val.h5" --k 5 > "$w/knnf.out" 2>/dev/null
a=$(grep '^knn:' "$w/knn.out"); b=$(grep '^knn:' "$w/knnf.out")
check "jpeg_programs.knn_on_the_fly_equals_features_files ($a)" [ -n "$a" ] && [ "$a" = "$b" ]
run 2 "$ev" linprobe --train-features "$w/train.h5" --val-features "$w/val.h5" --epochs 2 --probe-batch 32 --warmup-epochs 1 \
  --out "$w/lp" > "$w/lp.out" 2>"$w/lp.err"
check "jpeg_programs.linprobe ($(tail -1 "$w/lp.out"))" grep -q '^linprobe: top1=' "$w/lp.out"
F="--checkpoint $ck --data $w/shards --batch 8 --steps 6 --warmup-steps 2 --log-every 100"
run 2 "$ft" $F --out "$w/ft" > "$w/ft.out" 2>"$w/ft.err" || bad "jpeg_programs.finetune ($(head -1 "$w/ft.err"))"
run 2 "$ft" $F --out "$w/ftr" --max-steps-this-run 3 >/dev/null 2>"$w/ftr.err" &&
run 2 "$ft" $F --out "$w/ftr" > "$w/ftr.out" 2>>"$w/ftr.err" || bad "jpeg_programs.finetune_resume_run ($(tail -1 "$w/ftr.err"))"
nval=$($PY -c "import json; print(json.load(open('$w/shards/manifest.json'))['splits']['val']['images'])")
check "jpeg_programs.finetune_evaluates_every_val_image ($nval)" $PY -c "
import json, sys
ev = [json.loads(l) for l in open('$w/ft/metrics.jsonl') if '\"eval\"' in l]
sys.exit(0 if len(ev) >= 1 and all(e['images'] == $nval for e in ev) else 1)"
check "jpeg_programs.finetune_resume_bit_exact" bash -c "grep -q resuming '$w/ftr.out' && cmp -s '$w/ft/ft-00000006.bin' '$w/ftr/ft-00000006.bin'"
exit $fail
