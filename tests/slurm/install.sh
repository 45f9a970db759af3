#!/usr/bin/env bash
# Install a one-node Slurm (Debian slurm-wlm + munge) when it is missing. Idempotent, non-interactive.
# Needs root (or passwordless sudo). Used by tests/test_slurm.py and `make test`.
set -euo pipefail

if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
    && command -v munged >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1; then
    echo "slurm already installed: $(slurmctld -V 2>/dev/null || echo '?')"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install.sh: slurm is missing and we are not root (no passwordless sudo)" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: slurm is missing and apt-get is not available" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
install() {
    $SUDO apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        slurm-wlm munge
}
# `apt-get update` only when the package lists do not know slurm-wlm, or are too old to install it.
if ! apt-cache show slurm-wlm >/dev/null 2>&1; then
    $SUDO apt-get update -q
fi
if ! install; then
    $SUDO apt-get update -q
    install
fi
echo "slurm installed in $(( $(date +%s) - start )) s: $(slurmctld -V)"
