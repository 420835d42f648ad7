#!/usr/bin/env bash
# semaim-eval export / import / features against PyTorch, and bad input:
# 1. a briefly trained checkpoint, exported (encoder) and loaded strictly into a timm-layout
#    ViT (tests/ref/vit_timm.py): the same features as the C encoder on the same images
#    (2 ranks, max rel diff <= 1e-4); a --full export has the authors' names and shapes, and
#    imports back into a checkpoint with bit-identical parameters; so does one of the inference
#    target, whose head is D wide (with the export's metadata and without);
# 2. a file written by PyTorch (learned pos_embed, classifier head, other tensor order, no
#    metadata) imports and gives the reference's features;
# 3. bad input -> one-line error, exit 2: missing tensor, wrong shape, integer dtype, NaN,
#    truncated file, a checkpoint of another config (flags or shard size), features whose
#    labels do not match, fine-tuning labels outside the class count.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1
eval_bin=$PWD/bin/semaim-eval train=$PWD/bin/semaim-train
for b in "$eval_bin" "$train"; do [ -x "$b" ] || { echo "FAIL: eval_export.binaries ($b not built)"; exit 1; }; done
scratch w tevalx
# one rank runs as an MPI singleton: mpirun itself lingers ~2 s after a failing rank
ev() { local np=$1; shift; if [ "$np" = 1 ]; then timeout 120 "$eval_bin" "$@"; else timeout 120 mpirun -np "$np" "$eval_bin" "$@"; fi; }
# expect_error NAME PATTERN CMD...: exit 2 and exactly one error line from semaim-eval (notes aside), matching PATTERN
expect_error() {
  local name=$1 pat=$2; shift 2
  "$@" >"$w/out" 2>"$w/err"; local rc=$?
  grep '^semaim-eval' "$w/err" | grep -v '^semaim-eval: note: ' >"$w/err.line"
  record_bad_input "$name" "$rc" "$w/err.line" semaim-eval
  local lines; lines=$(grep '^semaim-eval' "$w/err" | grep -vc '^semaim-eval: note: ')
  if [ $rc = 2 ] && [ "$lines" = 1 ] && grep -q -- "$pat" "$w/err"; then pass "eval_export.$name"
  else bad "eval_export.$name (exit $rc, want 2 and one line matching '$pat')"; sed 's/^/    | /' "$w/err" | head -5; fi
}

$PY tests/tools/make_shards.py "$w/data" --counts 30,27 --size 32 >/dev/null &&
$PY tests/tools/make_shards.py "$w/data" --counts 12,11 --size 32 --split val --seed 1 >/dev/null ||
  { bad "eval_export.make_shards"; exit 1; }
M="--image 32 --patch 8 --width 64 --depth 2 --dec-depth 1 --heads 2"
timeout 120 mpirun -np 2 "$train" --data "$w/data" --out "$w/run" $M --batch 8 --steps 4 --warmup-steps 0 \
  --base-lr 0.05 --log-every 100 >/dev/null 2>"$w/train.err" || { bad "eval_export.train ($(head -1 "$w/train.err"))"; exit 1; }
ck=$w/run/ckpt-00000004.bin

# 1. export -> PyTorch
ev 1 export --checkpoint "$ck" --out "$w/enc.safetensors" >/dev/null || bad "eval_export.export_encoder"
ev 2 export --checkpoint "$ck" --out "$w/full.safetensors" --full >/dev/null || bad "eval_export.export_full"
ev 2 features --checkpoint "$ck" --data "$w/data" --split val --out "$w/f.h5" >/dev/null || bad "eval_export.features_2_ranks"
$PY tests/ref/vit_timm.py check --weights "$w/enc.safetensors" --shards "$w/data" --features "$w/f.h5" --name export || fail=1
$PY tests/ref/vit_timm.py check-full --weights "$w/full.safetensors" --name export || fail=1
ev 1 import --weights "$w/full.safetensors" --out "$w/imp" >/dev/null || bad "eval_export.import_full"
cat > "$w/cmp.py" <<'PY'
import struct, sys
a, b = (open(p, "rb").read() for p in sys.argv[1:3])
n = struct.unpack_from("<q", a, 40)[0]          # nparams (src/io/checkpoint.c header layout)
ha, hb = (struct.unpack_from("<I", x, 12)[0] for x in (a, b))   # header sizes
assert a[16:40] == b[16:40], "config differs"
assert a[ha:ha + 4 * n] == b[hb:hb + 4 * n], "parameters differ"
PY
if $PY "$w/cmp.py" "$ck" "$w/imp/ckpt-00000000.bin"; then pass "eval_export.full_round_trip_bit_exact"
else bad "eval_export.full_round_trip_bit_exact"; fi

# 1b. a feature target's head (--target inference: D outputs, not P·P·3): a --full export carries
#     it with semaim_target metadata, and import rebuilds the same model from it — also from a
#     copy without that metadata, whose head width tells
timeout 120 "$train" --data "$w/data" --out "$w/inf" $M --target inference --batch 8 --steps 2 --warmup-steps 0 \
  --log-every 100 >/dev/null 2>"$w/inf.err" || bad "eval_export.train_inference ($(head -1 "$w/inf.err"))"
ev 1 export --checkpoint "$w/inf/ckpt-00000002.bin" --out "$w/inf.safetensors" --full >/dev/null || bad "eval_export.export_full_inference"
cat > "$w/strip.py" <<'PY'
import json, struct, sys
src, dst = sys.argv[1:]
b = open(src, "rb").read()
n = struct.unpack_from("<Q", b, 0)[0]
h = json.loads(b[8:8 + n])
assert h["prediction_head.fc2.weight"]["shape"] == [64, 256], h["prediction_head.fc2.weight"]
assert h["prediction_head.fc2.bias"]["shape"] == [64] and h["__metadata__"]["semaim_target"] == "inference", h["__metadata__"]
del h["__metadata__"]["semaim_target"]
nh = json.dumps(h).encode()
nh += b" " * (-len(nh) % 8)
open(dst, "wb").write(struct.pack("<Q", len(nh)) + nh + b[8 + n:])
PY
if $PY "$w/strip.py" "$w/inf.safetensors" "$w/inf-nometa.safetensors"; then pass "eval_export.full_export_carries_the_feature_head"
else bad "eval_export.full_export_carries_the_feature_head"; fi
# a teacher-target run (a 48-wide timm ViT written by PyTorch): its head is 48 wide, and the
# export names the teacher, so the import records the same teacher
$PY tests/ref/teacher_ref.py write --layout timm --image 32 --patch 8 --width 48 --depth 2 --heads 3 --meta-heads \
  --out "$w/teacher.safetensors" --data "$w/teacher.data" >/dev/null || bad "eval_export.teacher_write"
timeout 120 "$train" --data "$w/data" --out "$w/tea" $M --target teacher --teacher "$w/teacher.safetensors" --batch 8 \
  --steps 2 --warmup-steps 0 --log-every 100 >/dev/null 2>"$w/tea.err" || bad "eval_export.train_teacher ($(head -1 "$w/tea.err"))"
ev 1 export --checkpoint "$w/tea/ckpt-00000002.bin" --out "$w/tea.safetensors" --full >/dev/null || bad "eval_export.export_full_teacher"
ev 1 import --weights "$w/tea.safetensors" --out "$w/imp-tea" >/dev/null 2>"$w/imp.err" || bad "eval_export.import_teacher ($(head -1 "$w/imp.err"))"
if $PY "$w/cmp.py" "$w/tea/ckpt-00000002.bin" "$w/imp-tea/ckpt-00000000.bin" && $PY - "$w/tea/ckpt-00000002.bin" "$w/imp-tea/ckpt-00000000.bin" <<'PY'
import sys
a, b = (open(p, "rb").read() for p in sys.argv[1:3])
assert a[112] == 3 and a[112:192] == b[112:192], (a[112:192], b[112:192])   # kind, layout, width, size, name
assert a[128:192].rstrip(b"\0") == b"teacher.safetensors", a[128:192]
PY
then pass "eval_export.import_keeps_the_teacher_head_and_identity"
else bad "eval_export.import_keeps_the_teacher_head_and_identity"; fi
for f in inf inf-nometa; do
  ev 1 import --weights "$w/$f.safetensors" --out "$w/imp-$f" >/dev/null 2>"$w/imp.err" || bad "eval_export.import_$f ($(head -1 "$w/imp.err"))"
  if $PY "$w/cmp.py" "$w/inf/ckpt-00000002.bin" "$w/imp-$f/ckpt-00000000.bin" &&
     $PY -c "import sys; b = open(sys.argv[1], 'rb').read(); sys.exit(0 if b[112] == 1 else 1)" "$w/imp-$f/ckpt-00000000.bin"; then
    pass "eval_export.import_infers_the_inference_head[$f]"
  else bad "eval_export.import_infers_the_inference_head[$f]"; fi
done

# 2. PyTorch -> import
$PY tests/ref/vit_timm.py write --out "$w/pt.safetensors" --image 32 --patch 8 --width 64 --depth 2 --heads 2 >/dev/null ||
  bad "eval_export.pytorch_write"
ev 2 features --weights "$w/pt.safetensors" --heads 2 --data "$w/data" --out "$w/fpt.h5" >/dev/null 2>"$w/imp.err" ||
  bad "eval_export.import_pytorch_features"
if grep -q "2 tensor(s) not used" "$w/imp.err"; then pass "eval_export.import_reports_ignored_head"
else bad "eval_export.import_reports_ignored_head"; fi
$PY tests/ref/vit_timm.py check --weights "$w/pt.safetensors" --heads 2 --shards "$w/data" --features "$w/fpt.h5" --name import || fail=1
# the same file as a checkpoint is refused: its learned pos_embed is not the fixed table
expect_error import_learned_pos_embed_refused "pos_embed differs from the fixed 2-D sin-cos table" \
  ev 1 import --weights "$w/pt.safetensors" --heads 2 --out "$w/imp2"

# 3. bad input
$PY tests/ref/vit_timm.py break --src "$w/enc.safetensors" --out-prefix "$w/" || bad "eval_export.break_files"
expect_error import_missing_tensor "missing tensor 'blocks.1.mlp.fc2.weight'" ev 1 import --weights "$w/missing.safetensors" --out "$w/x"
expect_error import_wrong_shape "'blocks.0.attn.qkv.weight' has shape \[191,64\], expected \[192,64\]" \
  ev 2 knn --weights "$w/shape.safetensors" --data "$w/data"
expect_error import_wrong_dtype "'blocks.0.norm1.bias' has dtype I32" ev 1 export --weights "$w/dtype.safetensors" --out "$w/x.st"
expect_error import_nan "'blocks.0.mlp.fc1.bias' holds NaN" ev 1 features --weights "$w/nan.safetensors" --data "$w/data" --out "$w/x.h5"
head -c 5000 "$w/enc.safetensors" > "$w/trunc.safetensors"
expect_error import_truncated "outside the .* data bytes (truncated file?)" ev 2 knn --weights "$w/trunc.safetensors" --data "$w/data"
expect_error import_given_config_disagrees "width 64, not the --width 96 given" \
  ev 1 export --weights "$w/enc.safetensors" --width 96 --out "$w/x.st"
expect_error checkpoint_other_config_flags "checkpoint is for another config .*--depth 4" \
  ev 2 knn --checkpoint "$ck" --data "$w/data" --depth 4
# a checkpoint of a 64x64 model on 32x32 shards
cat > "$w/p64.py" <<'PY'
import sys; sys.path.insert(0, "tests/ref")
import numpy as np, safetensors_io, semaim_ref
t, _ = safetensors_io.read(sys.argv[1])
t["pos_embed"] = semaim_ref.sincos_pos_embed(64, 8)[None].astype(np.float32)
safetensors_io.write(sys.argv[2], t)
PY
$PY "$w/p64.py" "$w/pt.safetensors" "$w/p64.safetensors" || bad "eval_export.make_64"
ev 1 import --weights "$w/p64.safetensors" --heads 2 --out "$w/c64" >/dev/null 2>&1 || bad "eval_export.import_64"
expect_error checkpoint_other_config_image "32x32 images, smaller than the model's 64x64 input" \
  ev 2 knn --checkpoint "$w/c64/ckpt-00000000.bin" --data "$w/data"
expect_error not_a_checkpoint "bad magic" ev 1 knn --checkpoint "$w/f.h5" --data "$w/data"
# features whose labels do not match
ev 2 features --checkpoint "$ck" --data "$w/data" --split train --out "$w/ftr.h5" >/dev/null || bad "eval_export.features_train"
cat > "$w/labels.py" <<'PY'
import sys, h5py, numpy as np
src, short, alien = sys.argv[1:4]
for dst in (short, alien):
    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        for k, v in a.attrs.items(): b.attrs[k] = v
        b["cls"], b["mean"] = a["cls"][:], a["mean"][:]
        lab = a["labels"][:]
        b["labels"] = lab[:-1] if dst == short else np.where(np.arange(len(lab)) == 3, 11, lab).astype(np.int32)
PY
$PY "$w/labels.py" "$w/f.h5" "$w/short.h5" "$w/alien.h5" || bad "eval_export.make_bad_features"
expect_error features_labels_count "labels do not match the features: /labels has 22 entries but /cls has 23 rows" \
  ev 2 knn --train-features "$w/ftr.h5" --val-features "$w/short.h5"
expect_error features_labels_alien "labels do not match: val label 11 is not among the 10 train classes" \
  ev 2 linprobe --train-features "$w/ftr.h5" --val-features "$w/alien.h5" --epochs 1 --probe-batch 8
expect_error finetune_needs_classes "give --classes" ev 1 finetune --checkpoint "$ck" --data "$w/data" --out "$w/ft0" --batch 8
expect_error finetune_label_outside_classes "has label [5-9], outside 0..4 (--classes?)" \
  ev 1 finetune --checkpoint "$ck" --data "$w/data" --out "$w/ft1" --batch 8 --steps 2 --classes 5
expect_error unknown_flag "unknown option '--kk'" ev 1 knn --kk 3
exit $fail
