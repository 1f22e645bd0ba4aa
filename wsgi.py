"""WSGI entry point: ``gunicorn wsgi:app`` (see gunicorn.conf.py) or ``flask --app wsgi run``.

An invalid setting ends the process here with the one line ``ConfigError`` carries, never a traceback:
``flask --app wsgi <command>`` imports this module before any command runs. In a ``flask`` command,
a database that cannot be used is reported in one line too (metrics_app/cli).
"""
import click

from config import ConfigError
from metrics_app import create_app
from metrics_app.cli import database_errors_in_one_line
from metrics_app.extensions import db

try:
    app = create_app()
except ConfigError as exc:
    raise SystemExit(str(exc)) from None

if click.get_current_context(silent=True) is not None:  # loaded by the `flask` command, not a server
    with app.app_context():
        database_errors_in_one_line(db.engine.url)
