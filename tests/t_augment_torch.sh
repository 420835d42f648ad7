#!/usr/bin/env bash
# The bicubic resize, train augmentation and eval transform against PyTorch's
# F.interpolate (antialias on for INTERP_PIL, off for INTERP_TORCH). Needs build/tools/augment_dump.
. "$(dirname "$0")/lib.sh"
tool=build/tools/augment_dump
if [ ! -x "$tool" ]; then echo "FAIL: augment_torch ($tool not built: make units)"; exit 1; fi
scratch work augtorch
/usr/bin/python3 tests/tools/augment_torch.py "$tool" "$work"
