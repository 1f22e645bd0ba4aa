"""WSGI entry point: ``gunicorn wsgi:app`` (see gunicorn.conf.py) or ``flask --app wsgi run``."""
from metrics_app import create_app

app = create_app()
