#!/usr/bin/env bash
# Create venv/ if missing and install requirements.txt into it whenever the file changed.
# Sourced by start.sh and test.sh, so set-up stays one command each. pip's own chatter goes to
# venv/pip.log (shown only when the install fails), so a start-up error stays the one line it is.
set -euo pipefail
if [ ! -x venv/bin/python ]; then
  python3 -m venv venv
fi
if ! cmp -s requirements.txt venv/.requirements.installed; then
  echo "installing requirements.txt into venv/ (log: venv/pip.log)" >&2
  if ! { venv/bin/pip install --quiet --upgrade pip && venv/bin/pip install --quiet -r requirements.txt; } \
      > venv/pip.log 2>&1; then
    cat venv/pip.log >&2
    exit 1
  fi
  cp requirements.txt venv/.requirements.installed
fi
