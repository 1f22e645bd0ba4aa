"""WSGI entry point: ``gunicorn wsgi:app`` (see gunicorn.conf.py) or ``flask --app wsgi run``.

An invalid setting ends the process here with the one line ``ConfigError`` carries, never a traceback:
``flask --app wsgi <command>`` imports this module before any command runs.
"""
from config import ConfigError
from metrics_app import create_app

try:
    app = create_app()
except ConfigError as exc:
    raise SystemExit(str(exc)) from None
