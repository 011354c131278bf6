#!/usr/bin/env bash
# Download into .whl/ (gitignored) the wheels ltbench needs on the GPU machine and its image lacks, for that
# image's Python (CPython 3.12, x86-64 manylinux). The image has torch, torchvision, timm, pyarrow, pandas,
# huggingface-hub, fsspec, xxhash, requests, pyyaml, click, rich, scikit-learn, pytest and hypothesis, but not
# `datasets` nor two of its requirements (dill, multiprocess); fsspec is carried too because datasets caps it.
# Versions are the ones installed in this checkout's .venv (what the test suite ran with).
#
#   benchmarks/gpu_wheels.sh [EXTRA==VERSION ...]     e.g. pyarrow==26.0.1 when the image's pyarrow is too old
#
# On the GPU machine (device run with carry [".whl"]), the command starts with:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#     .whl/*.whl && export PYTHONPATH=/tmp/site || exit;
# (docs/kernels.md, "GPU check", has the whole command.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
NAMES=(datasets dill multiprocess fsspec)
SPECS=()
for name in "${NAMES[@]}"; do
  SPECS+=("$name==$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")")
done
SPECS+=("$@")
rm -rf .whl
mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${SPECS[@]}"
echo "requirements of the carried wheels (each must be in the image or carried):"
for whl in .whl/*.whl; do
  unzip -p "$whl" '*.dist-info/METADATA' | { grep '^Requires-Dist' || true; } | { grep -v 'extra ==' || true; } |
    sed "s|^|  $(basename "$whl"): |"
done
ls -1 .whl
du -sh .whl
