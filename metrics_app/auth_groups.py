"""Which tokens each view needs, declared on the view or its blueprint rather than decided by its
endpoint's name (auth.py checks them). Imports nothing of the app, so every views module can use it."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, Flask, current_app

READ, INGEST, OPEN = "read", "ingest", "open"
#: Each group's config key (its tokens, when non-empty); open endpoints need none.
GROUP_SETTINGS: dict[str, str | None] = {READ: "READ_TOKEN", INGEST: "INGEST_TOKEN", OPEN: None}
_GROUP = "auth_group"
_QUERY_TOKEN = "auth_token_in_query"
View = TypeVar("View", bound=Callable)


def _known(group: str) -> None:
    if group not in GROUP_SETTINGS:
        raise ValueError(f"unknown auth group {group!r}; one of {sorted(GROUP_SETTINGS)}")


def requires(group: str, *, token_in_query: bool = False) -> Callable[[View], View]:
    """Declares the token group a view needs. ``token_in_query`` also takes ``?token=`` on its
    WebSocket handshake. Put it right above the function, under ``@sock.route``, whose wrapper
    copies the declaration."""
    _known(group)

    def declare(view: View) -> View:
        setattr(view, _GROUP, group)
        setattr(view, _QUERY_TOKEN, token_in_query)
        return view
    return declare


open_route = requires(OPEN)


def declare_blueprint(bp: Blueprint, group: str) -> Blueprint:
    """The group of every view of ``bp`` that declares none itself."""
    _known(group)
    setattr(bp, _GROUP, group)
    return bp


def declared_group(endpoint: str, app: Flask | None = None) -> str | None:
    """The group ``endpoint``'s view or blueprint declares; None when neither does."""
    app = app or current_app
    group = getattr(app.view_functions.get(endpoint), _GROUP, None)
    if group is None and "." in endpoint:
        group = getattr(app.blueprints.get(endpoint.rpartition(".")[0]), _GROUP, None)
    if group is None and endpoint == "static":
        group = OPEN  # Flask adds its static route itself; the files are the pages' scripts and styles
    return group


def token_in_query(endpoint: str) -> bool:
    """Whether the WebSocket handshake of ``endpoint`` may carry its token as ``?token=``."""
    return getattr(current_app.view_functions.get(endpoint), _QUERY_TOKEN, False)
