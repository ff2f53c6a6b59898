#!/usr/bin/env bash
# The README's second command: set up everything the tests need, then run them.
# Installs Debian's openssh-server when /usr/sbin/sshd is missing (the SSH tests
# start a real sshd on 127.0.0.1), makes .venv, and runs pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null; then
  echo "installing openssh-server and openssh-client (Debian packages)" >&2
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    openssh-server openssh-client >&2
fi
source "$ROOT/scripts/_venv.sh" test
cd "$ROOT"
exec python -m pytest "$@"
