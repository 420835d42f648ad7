#!/usr/bin/env bash
# The frozen teachers and the feature loss against PyTorch (tests/ref/teacher_ref.py drives
# the references, tests/tools/teacher_check the C side):
# 1. tokens of small random teachers written by PyTorch, in each layout's own torch.nn module
#    structure (timm's ViT; OpenAI CLIP's tower on nn.MultiheadAttention), widths other than
#    any student's, on two grids: timm 48 wide / 3 heads from metadata at 32² patch 4, and
#    128 wide / heads from width/64 at 40² patch 8 (tensors in another order); CLIP 64 wide /
#    2 heads at 32² patch 4, and F16 weights inside a whole CLIP file ("visual." prefix, text
#    tensors beside) at 40² patch 8. fp32 within 5e-6 of float64 torch on OpenBLAS and oneDNN,
#    bf16-emulated within 3e-2; the same result twice; one image alone as in the batch;
# 2. the feature loss and its gradient against torch's F.normalize + autograd (1e-5);
# 3. bad teacher files: exit 2 and one line naming the file and the tensor (or both grids):
#    missing tensor, wrong shape, unknown layout, another grid, another patch, NaN weight,
#    truncated file, a LayerScale tensor;
# 4. semaim-train --target teacher on real command lines (2 ranks): each bad file of 3, another
#    grid, a missing file, --target teacher without --teacher, --teacher without --target
#    teacher, --order-signal self: exit 2, one line naming the file (and tensor), no run folder;
#    a run with each layout records the teacher (settings.json, run_start, the header: kind,
#    layout, width, base name, size), resumes bit-exactly, and a resume with another teacher
#    file is refused naming both.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1
# TEACHER_CHECK: another build of the tool (build/asan/tools/teacher_check for the sanitizers)
tool=${TEACHER_CHECK:-$PWD/build/tools/teacher_check} ref=tests/ref/teacher_ref.py
[ -x "$tool" ] || { echo "FAIL: teacher.binaries ($tool not built)"; exit 1; }
scratch w tteacher

# write NAME ARGS...: a reference teacher NAME.safetensors and its images/tokens NAME.data
write() {
  local n=$1; shift
  $PY $ref write --out "$w/$n.safetensors" --data "$w/$n.data" "$@" >/dev/null 2>"$w/$n.err" ||
    { bad "teacher.write_$n ($(tail -1 "$w/$n.err"))"; return 1; }
}
# tokens NAME IMAGE PATCH TOL [GEMM PRECISION]: teacher_check's PASS/FAIL lines as they are
tokens() {
  local n=$1 tag=$1 out; shift
  [ $# -gt 3 ] && tag="${n}_$4_${5//-/_}"
  out=$("$tool" tokens "teacher.$tag" "$w/$n.safetensors" "$w/$n.data" "$@" 2>&1); local rc=$?
  echo "$out" | grep -E '^(PASS|FAIL):'
  echo "$out" | grep -q '^teacher: ' || bad "teacher.$n.describe (no description line)"
  [ $rc = 0 ] || { fail=1; echo "$out" | grep -v -E '^(PASS|FAIL):' | sed 's/^/    | /' | head -5; }
}
# describe NAME WANT: the description line names the layout and sizes
describe() {
  local line; line=$("$tool" load "$w/$1.safetensors" "$3" "$4" 2>&1)
  if [ "$line" = "teacher: $2" ]; then pass "teacher.$1.description"; else bad "teacher.$1.description (got '$line', want 'teacher: $2')"; fi
}

write timm --layout timm --image 32 --patch 4 --width 48 --depth 2 --heads 3 --meta-heads --batch 3 &&
  tokens timm 32 4 5e-6 && tokens timm 32 4 5e-6 onednn fp32 && tokens timm 32 4 3e-2 openblas bf16-emulated &&
  describe timm "timm ViT, width 48, depth 2, heads 3, mlp 192, patch 4, grid 8, tokens 65x48" 32 4
write timm5 --layout timm --image 40 --patch 8 --width 128 --depth 2 --heads 2 --batch 2 --reverse --seed 2 &&
  tokens timm5 40 8 5e-6 &&
  describe timm5 "timm ViT, width 128, depth 2, heads 2, mlp 512, patch 8, grid 5, tokens 26x128" 40 8
write clip --layout clip --image 32 --patch 4 --width 64 --depth 2 --heads 2 --out-dim 40 --meta-heads --batch 3 &&
  tokens clip 32 4 5e-6 && tokens clip 32 4 5e-6 onednn fp32 && tokens clip 32 4 3e-2 openblas bf16-emulated &&
  describe clip "OpenAI CLIP visual tower, width 64, depth 2, heads 2, mlp 256, patch 4, grid 8, tokens 65x40" 32 4
write clip5 --layout clip --image 40 --patch 8 --width 64 --depth 3 --heads 2 --out-dim 24 --meta-heads --batch 2 \
  --f16 --prefix visual. --seed 3 &&
  tokens clip5 40 8 5e-6 &&
  describe clip5 "OpenAI CLIP visual tower, width 64, depth 3, heads 2, mlp 256, patch 8, grid 5, tokens 26x24" 40 8

# 2. the feature loss
if $PY $ref featloss --out "$w/feat.data" >/dev/null 2>"$w/feat.err"; then
  "$tool" featloss teacher.featloss "$w/feat.data" 1e-5 | grep -E '^(PASS|FAIL):' || true
  [ "${PIPESTATUS[0]}" = 0 ] || fail=1
else bad "teacher.featloss_ref ($(tail -1 "$w/feat.err"))"; fi

# 3. bad files: expect_error NAME FILE IMAGE PATCH PATTERN...: exit 2, one line, naming the file
# and matching every PATTERN
expect_error() {
  local name=$1 file=$2 image=$3 patch=$4 rc p ok=1; shift 4
  "$tool" load "$file" "$image" "$patch" >"$w/out" 2>"$w/err"; rc=$?
  record_bad_input "teacher.$name" "$rc" "$w/err" teacher_check
  [ $rc = 2 ] && [ "$(wc -l <"$w/err")" = 1 ] && grep -qF -- "$file" "$w/err" || ok=0
  for p in "$@"; do grep -qF -- "$p" "$w/err" || ok=0; done
  if [ $ok = 1 ]; then pass "teacher.bad_$name"
  else bad "teacher.bad_$name (exit $rc, want 2 and one line with the file and: $*)"; sed 's/^/    | /' "$w/err" | head -3; fi
}
for L in timm clip; do
  [ -f "$w/$L.safetensors" ] || continue
  $PY $ref break --src "$w/$L.safetensors" --out-prefix "$w/${L}_" --layout $L >/dev/null 2>"$w/break.err" ||
    { bad "teacher.break_$L ($(tail -1 "$w/break.err"))"; continue; }
  if [ $L = timm ]; then b=blocks.1. proj=attn.proj.weight fc1=mlp.fc1.bias; shape="[48,49]"; want="[48,48]"
  else b=transformer.resblocks.1. proj=attn.out_proj.weight fc1=mlp.c_fc.bias; shape="[64,65]"; want="[64,64]"; fi
  expect_error ${L}_missing "$w/${L}_missing.safetensors" 32 4 "missing tensor '$b$fc1'"
  expect_error ${L}_shape "$w/${L}_shape.safetensors" 32 4 "'$b$proj'" "$shape" "expected $want"
  expect_error ${L}_unknown_layout "$w/${L}_unknown.safetensors" 32 4 "unknown teacher layout" "encoder."
  expect_error ${L}_other_grid "$w/$L.safetensors" 48 4 "patch grid is 8x8" "the student's 12x12"
  expect_error ${L}_other_patch "$w/$L.safetensors" 64 8 "reads 32x32 images (patch 4, grid 8x8)" "the student's are 64x64 (patch 8)"
  expect_error ${L}_nan "$w/${L}_nan.safetensors" 32 4 "'$b$proj'" "NaN"
  expect_error ${L}_truncated "$w/${L}_truncated.safetensors" 32 4 "truncated" "tensor '"
  expect_error ${L}_layerscale "$w/${L}_layerscale.safetensors" 32 4 "'${b}ls1.gamma'" "no place"
done

# 4. the trainer
train=$PWD/bin/semaim-train
[ -x "$train" ] || { echo "FAIL: teacher.train_binary ($train not built)"; exit 1; }
small_shards "$w/data"
M="--data $w/data --image 32 --patch 4 --width 32 --depth 2 --dec-depth 1 --heads 2 --batch 4 --warmup-steps 1 --log-every 1000"
trun() { local np=$1; shift; timeout 300 mpirun -np "$np" "$train" "$@"; }
train_bad() {   # name args... then -- patterns...
  local name=$1; shift
  local args=() pats=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  pats=("$@")
  rm -rf "$w/x"
  trun 2 $M "${args[@]}" --out "$w/x" >"$w/tb.out" 2>&1
  local rc=$? lines ok=1 p
  lines=$(grep -c '^semaim-train' "$w/tb.out")
  record_bad_input "teacher.train_$name" "$rc" "$w/tb.out" semaim-train
  [ $rc = 2 ] && [ "$lines" = 1 ] && [ ! -e "$w/x" ] || ok=0
  for p in "${pats[@]}"; do grep -qF -- "$p" "$w/tb.out" || ok=0; done
  if [ $ok = 1 ]; then pass "teacher.train_bad_$name ($(grep '^semaim-train' "$w/tb.out"))"
  else bad "teacher.train_bad_$name (exit $rc, $lines lines, want 2, 1 and: ${pats[*]}; run folder $([ -e "$w/x" ] && echo left || echo absent))"
    sed 's/^/    | /' "$w/tb.out" | head -4; fi
}
for L in timm clip; do
  [ -f "$w/${L}_missing.safetensors" ] || continue
  if [ $L = timm ]; then b=blocks.1. proj=attn.proj.weight fc1=mlp.fc1.bias; else b=transformer.resblocks.1. proj=attn.out_proj.weight fc1=mlp.c_fc.bias; fi
  train_bad ${L}_missing --target teacher --teacher "$w/${L}_missing.safetensors" -- "$w/${L}_missing.safetensors" "missing tensor '$b$fc1'"
  train_bad ${L}_shape --target teacher --teacher "$w/${L}_shape.safetensors" -- "$w/${L}_shape.safetensors" "'$b$proj'"
  train_bad ${L}_unknown_layout --target teacher --teacher "$w/${L}_unknown.safetensors" -- "$w/${L}_unknown.safetensors" "unknown teacher layout"
  train_bad ${L}_nan --target teacher --teacher "$w/${L}_nan.safetensors" -- "$w/${L}_nan.safetensors" "'$b$proj'" "NaN"
done
train_bad other_grid --image 48 --target teacher --teacher "$w/timm.safetensors" -- "$w/timm.safetensors" "patch grid is 8x8" "the student's 12x12"
train_bad missing_file --target teacher --teacher "$w/none.safetensors" -- "$w/none.safetensors"
train_bad no_teacher_file --target teacher -- "--target teacher needs --teacher FILE.safetensors"
train_bad teacher_without_target --teacher "$w/timm.safetensors" -- "--teacher $w/timm.safetensors is only used with --target teacher"
train_bad self_signal --target teacher --teacher "$w/timm.safetensors" --order-signal self -- "--order-signal self is not available with --target teacher"

# a run with each layout: recorded, resumed bit-exactly; another teacher refused
for L in timm clip; do
  [ -f "$w/$L.safetensors" ] || continue
  R="$M --target teacher --teacher $w/$L.safetensors --steps 4 --ckpt-every 2 --resume auto"
  trun 1 $R --out "$w/t$L" >"$w/t$L.out" 2>&1 || bad "teacher.train_$L ($(tail -1 "$w/t$L.out"))"
  if grep -qF "semaim-train: teacher $w/$L.safetensors: " "$w/t$L.out" && $PY - "$w/t$L" "$w/$L.safetensors" $L <<'PY'
import json, math, os, struct, sys
d, f, layout = sys.argv[1:]
s = json.load(open(f"{d}/settings.json"))
assert s["target"] == "teacher" and s["teacher"] == f, s
start = json.loads(open(f"{d}/metrics.jsonl").readline())
assert start["settings"]["target"] == "teacher" and start["settings"]["teacher"] == f, start["settings"]
b = open(f"{d}/ckpt-00000004.bin", "rb").read()
width = {"timm": 48, "clip": 40}[layout]
assert struct.unpack_from("<II", b, 8) == (4, 200) and b[112] == 3 and b[113] == (layout == "clip"), b[112:114]
assert struct.unpack_from("<i", b, 116)[0] == width and struct.unpack_from("<q", b, 120)[0] == os.path.getsize(f)
assert b[128:192].rstrip(b"\0").decode() == os.path.basename(f), b[128:192]
losses = [json.loads(l)["loss"] for l in open(f"{d}/metrics.jsonl") if '"event": "step"' in l]
assert len(losses) == 4 and all(math.isfinite(x) and 0 < x <= 4 for x in losses), losses
PY
  then pass "teacher.train_${L}_recorded_in_settings_runstart_and_header"
  else bad "teacher.train_${L}_recorded_in_settings_runstart_and_header"; fi
  trun 1 $R --out "$w/p$L" --max-steps-this-run 2 >/dev/null 2>&1 || bad "teacher.train_${L}_first_half"
  trun 1 $R --out "$w/p$L" >"$w/p$L.out" 2>&1 || bad "teacher.train_${L}_second_half"
  if grep -q "resumed from .*ckpt-00000002.bin at step 2" "$w/p$L.out" && cmp -s "$w/t$L/ckpt-00000004.bin" "$w/p$L/ckpt-00000004.bin"
  then pass "teacher.train_${L}_resume_bit_exact"; else bad "teacher.train_${L}_resume_bit_exact"; fi
done
# the teacher's targets with the order from the EMA of the student (--ema-order): the EMA
# weights and both bits in the header, resumed bit-exactly
if [ -f "$w/timm.safetensors" ]; then
  R="$M --target teacher --teacher $w/timm.safetensors --ema-order --steps 4 --ckpt-every 2 --resume auto"
  trun 1 $R --out "$w/te" >"$w/te.out" 2>&1 || bad "teacher.train_ema_order ($(tail -1 "$w/te.out"))"
  trun 1 $R --out "$w/tep" --max-steps-this-run 2 >/dev/null 2>&1 || bad "teacher.train_ema_order_first_half"
  trun 1 $R --out "$w/tep" >"$w/tep.out" 2>&1 || bad "teacher.train_ema_order_second_half"
  if [ -f "$w/te/ckpt-00000004.bin" ] && $PY -c '
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<q", b, 40)[0]
assert b[103] == 3 and b[112] == 3 and len(b) == 200 + 16 * n, (b[103], b[112], len(b), n)
' "$w/te/ckpt-00000004.bin" && grep -q "resumed from .*ckpt-00000002.bin at step 2" "$w/tep.out" &&
     cmp -s "$w/te/ckpt-00000004.bin" "$w/tep/ckpt-00000004.bin"
  then pass "teacher.train_ema_order_recorded_and_resume_bit_exact"
  else bad "teacher.train_ema_order_recorded_and_resume_bit_exact"; fi
fi
if [ -d "$w/ttimm" ]; then
  cp "$w/timm.safetensors" "$w/timm2.safetensors" && printf 'x' >>"$w/timm2.safetensors"   # another size
  trun 1 $M --target teacher --teacher "$w/timm2.safetensors" --steps 6 --out "$w/ttimm" >"$w/other.out" 2>&1; rc=$?
  if [ $rc = 2 ] && grep -qF "checkpoint was trained with --target teacher --teacher timm.safetensors (timm, width 48," "$w/other.out" &&
     grep -qF "this run has --target teacher --teacher timm2.safetensors" "$w/other.out"; then pass "teacher.train_resume_with_another_teacher_refused"
  else bad "teacher.train_resume_with_another_teacher_refused (exit $rc)"; sed 's/^/    | /' "$w/other.out" | head -3; fi
fi
exit $fail
