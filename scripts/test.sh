#!/usr/bin/env bash
# Install everything the tests use and run the whole suite. pytest exits non-zero (5) when it
# collects nothing, so an empty run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# Debian packages the tests read: Fashion-MNIST (diffusion recipe) and hydrogen-drumkits (audio recipe)
missing=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
[ -d /usr/share/hydrogen/data/drumkits ] || missing+=(hydrogen-drumkits)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    else
        echo "missing Debian packages: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi
.venv/bin/python -m pytest -q -rs --durations=15 "$@"
