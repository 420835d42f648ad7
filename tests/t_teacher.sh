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
#    truncated file, a LayerScale tensor.
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
exit $fail
