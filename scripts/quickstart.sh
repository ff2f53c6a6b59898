#!/usr/bin/env bash
# The README's first command: deploy the local example, run code in it, show it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$ROOT"
sindri deploy -f examples/local.yaml
sindri run quickstart -- 'print(1 + 1)'
sindri status quickstart
echo
echo "next: sindri run quickstart -- 'CODE'   |   sindri destroy quickstart --yes"
