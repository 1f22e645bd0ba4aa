#!/usr/bin/env bash
# Create the virtual environment, install the pinned dependencies, apply migrations, and serve on
# 0.0.0.0:${PORT:-8000} with gunicorn (settings in gunicorn.conf.py).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x venv/bin/python ]; then
  python3 -m venv venv
fi
if ! cmp -s requirements.txt venv/.requirements.installed; then
  venv/bin/pip install --quiet --upgrade pip
  venv/bin/pip install --quiet -r requirements.txt
  cp requirements.txt venv/.requirements.installed
fi
if [ -d migrations ]; then
  FLASK_APP=wsgi SAMPLERS_ENABLED=false venv/bin/flask db upgrade
fi
exec venv/bin/gunicorn --config gunicorn.conf.py wsgi:app
