#!/usr/bin/env bash
# The main job end to end, offline: set up, extract a learngene from the packaged MiniLM, build a
# small BERT from it, fine-tune it on IMDB reviews beside a random-init baseline, print both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh recipes   # the recipes need datasets (and tensorboard for its logging option)
.venv/bin/python recipes/imdb_workflow.py "$@"
