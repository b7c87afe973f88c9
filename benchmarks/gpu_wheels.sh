#!/usr/bin/env bash
# Wheels an offline GPU machine lacks, for benchmarks/gpu_smoke.sh: Python 3.12 manylinux x86_64, into .whl/
# (git-ignored). The device tool carries at most 64 MiB of working tree: the script refuses more.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl bitsandbytes==0.50.2 faiss-cpu==1.15.1
total=$(du -cm .whl/*.whl | tail -1 | cut -f1)
echo "wheels in .whl: ${total} MiB"
[ "$total" -lt 64 ] || { echo "over the 64 MiB the device tool carries" >&2; exit 1; }
