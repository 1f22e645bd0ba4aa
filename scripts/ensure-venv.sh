#!/usr/bin/env bash
# Create venv/ if missing and install requirements.txt into it whenever the file changed.
# Sourced by start.sh and test.sh, so set-up stays one command each.
set -euo pipefail
if [ ! -x venv/bin/python ]; then
  python3 -m venv venv
fi
if ! cmp -s requirements.txt venv/.requirements.installed; then
  venv/bin/pip install --quiet --upgrade pip
  venv/bin/pip install --quiet -r requirements.txt
  cp requirements.txt venv/.requirements.installed
fi
