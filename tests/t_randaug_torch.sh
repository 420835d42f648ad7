#!/usr/bin/env bash
# The fine-tuning augmentations (RandAugment ops and draws, random erasing, the uint8 crop and
# the eval transform) against torchvision 0.14 / PIL: see tests/tools/randaug_torch.py for
# what is compared and the bounds. Needs build/tools/randaug_dump and python3-torchvision.
. "$(dirname "$0")/lib.sh"
tool=build/tools/randaug_dump
if [ ! -x "$tool" ]; then echo "FAIL: randaug_torch ($tool not built: make units)"; exit 1; fi
if ! /usr/bin/python3 -c 'import torchvision, PIL' 2>/dev/null; then
  echo "FAIL: randaug_torch (python3-torchvision / python3-pil missing: scripts/deps.sh)"; exit 1
fi
scratch work ratorch
OMP_NUM_THREADS=1 /usr/bin/python3 tests/tools/randaug_torch.py "$tool" "$work"
