#!/usr/bin/env bash
# Create the virtual environment, install the pinned dependencies, apply migrations, and serve on
# 0.0.0.0:${PORT:-8000} with gunicorn (settings in gunicorn.conf.py).
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv.sh
if [ -d migrations ]; then
  FLASK_APP=wsgi SAMPLERS_ENABLED=false venv/bin/flask db upgrade
fi
# Thousands of live WebSocket clients need as many file descriptors: lift the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec venv/bin/gunicorn --config gunicorn.conf.py wsgi:app
