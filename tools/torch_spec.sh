#!/bin/sh
# Prints the pip requirement to install torch with.
# - TORCH set: that (e.g. TORCH='torch==2.5.1' or a CUDA index's build).
# - A CPU wheel of torch in one of pip's find-links folders (CI and these dev machines keep
#   one on local disk): pin exactly that version, so pip takes it in seconds and never
#   downloads a multi-GB CUDA build.
# - Otherwise: plain torch, PyPI's ordinary build (with CUDA on Linux GPU runners).
if [ -n "${TORCH:-}" ]; then echo "$TORCH"; exit 0; fi
links="${PIP_FIND_LINKS:-}"
[ -n "$links" ] || links=$(python3 -m pip config get global.find-links 2>/dev/null || true)
for d in $links; do
  d=${d#file://}
  for w in "$d"/torch-*+cpu-*.whl; do
    [ -e "$w" ] || continue
    v=${w##*/torch-}
    echo "torch==${v%%+*}"
    exit 0
  done
done
echo "torch>=2.1"
