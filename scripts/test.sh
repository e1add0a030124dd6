#!/usr/bin/env bash
# Install everything the tests use and run the whole suite. pytest exits non-zero (5) when it
# collects nothing, so an empty run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/python -m pytest -q -rs --durations=15 "$@"
