#!/usr/bin/env bash
# Install everything the tests use and run the whole suite. pytest exits non-zero (5) when it
# collects nothing, so an empty run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# Fashion-MNIST, a Debian package, for the diffusion recipe's tests
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist
    else
        echo "Fashion-MNIST is missing: sudo apt-get install dataset-fashion-mnist" >&2
        exit 1
    fi
fi
.venv/bin/python -m pytest -q -rs --durations=15 "$@"
