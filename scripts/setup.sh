#!/usr/bin/env bash
# Set up a fresh checkout: a virtual environment in .venv with hybridseq (editable) and its
# test tools. PyTorch 2.13.0 (a CPU build here) is installed first where the index has it, so
# the project's torch range does not pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  pip install "torch==2.13.0" || echo "setup: torch 2.13.0 unavailable; using the project's range"
fi
pip install -e ".[dev,forecast,serve,export,text,curves]"
