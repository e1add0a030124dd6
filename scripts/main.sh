#!/usr/bin/env bash
# The main job end to end, offline: set up, then extract learngenes from the packaged MiniLM and
# build smaller and larger BERTs from them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python recipes/build_from_minilm.py "$@"
