#!/usr/bin/env bash
# The bicubic resize, train augmentation and eval transform against PyTorch's
# F.interpolate (antialias on for INTERP_PIL, off for INTERP_TORCH). Needs build/tools/augment_dump.
set -u
cd "$(dirname "$0")/.."
tool=build/tools/augment_dump
if [ ! -x "$tool" ]; then echo "FAIL: augment_torch ($tool not built: make units)"; exit 1; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/augtorch.XXXXXX")
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 tests/tools/augment_torch.py "$tool" "$work"
