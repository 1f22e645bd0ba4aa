"""All configuration: every environment variable defined once, parsed by type and range, read here only.

``load_environment()`` checks the whole environment before anything starts: gunicorn's master (in
gunicorn.conf.py), each worker and every ``flask`` command (through ``create_app()`` in wsgi.py). The
first invalid value raises ``ConfigError``, whose text is the single line an operator sees: the
variable, its value and what is allowed. An empty value means the default. ``Config`` carries the
defaults; README "Configuration" is rendered from ``SETTINGS`` (tests/test_config.py compares them).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from typing import Any, Callable, Mapping

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError


class ConfigError(ValueError):
    """An environment variable the service cannot run with; ``str()`` is the whole message."""

    def __init__(self, name: str, shown: str, allowed: str, reason: str = "") -> None:
        problem = f": {reason}" if reason else " is not allowed"
        super().__init__(f"configuration error: {name}={shown!r}{problem}; expected {allowed}")


class Refused(ValueError):
    """A parser's refusal; its text, when there is one, says why beyond what is allowed."""


@dataclass(frozen=True)
class Kind:
    """How one variable's text becomes a value: ``parse`` raises ValueError, KeyError or ``Refused``."""

    parse: Callable[[str], Any]
    allowed: str


def integer(low: int, high: int) -> Kind:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise Refused
        return value
    return Kind(parse, f"an integer from {low:,} to {high:,}")


def duration(high: float, zero: str = "", unit: str = "seconds") -> Kind:
    """> 0, or >= 0 where ``zero`` says what 0 means: an interval of 0 would spin (or divide by 0)."""
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value) or not (0 <= value if zero else 0 < value) or value > high:
            raise Refused
        return value
    return Kind(parse, f"{unit}, {'0' if zero else '> 0'} to {high:,.0f}{f' (0 {zero})' if zero else ''}")


def boolean() -> Kind:
    words = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}
    return Kind(lambda text: words[text.lower()], "true/false, 1/0, yes/no or on/off")


def choice(*options: str) -> Kind:
    """Case-insensitive; the value is kept in the spelling of ``options``."""
    by_key = {option.lower(): option for option in options}
    return Kind(lambda text: by_key[text.lower()], "one of " + ", ".join(options))


def text() -> Kind:
    return Kind(str, "any text")


def words() -> Kind:
    return Kind(lambda raw: [part.strip() for part in raw.split(",") if part.strip()], "a comma-separated list")


def url_path() -> Kind:
    def parse(raw: str) -> str:
        if not raw.startswith("/") or any(c.isspace() or c in "?#" for c in raw):
            raise Refused
        return raw
    return Kind(parse, "a URL path starting with /")


def database_url() -> Kind:
    def parse(raw: str) -> str:
        try:
            url = make_url(raw)
        except ArgumentError:
            raise Refused("not a database URL") from None
        try:
            url.get_dialect()
        except NoSuchModuleError:
            raise Refused(f"no installed driver for {url.drivername!r}") from None
        # A relative SQLite path lives in Flask's instance folder, which Flask-SQLAlchemy creates.
        if url.get_backend_name() == "sqlite" and url.database and Path(url.database).is_absolute():
            folder = Path(url.database).parent
            if not folder.is_dir():
                raise Refused(f"the directory {folder} of the SQLite file does not exist")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise Refused(f"the directory {folder} of the SQLite file is not writable")
        return raw
    return Kind(parse, "a SQLAlchemy URL, e.g. sqlite:///./metrics.db or postgresql+psycopg://user@host:5432/db")


def redis_url() -> Kind:
    def parse(raw: str) -> str:
        if raw and urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
            raise Refused
        return raw
    return Kind(parse, "empty, or a redis://, rediss:// or unix:// URL")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    kind: Kind
    meaning: str
    key: str = ""  # the app.config key when it differs from the variable's name

    @property
    def config_key(self) -> str:
        return self.key or self.name


_DAY = 86_400.0
SETTINGS: tuple[Setting, ...] = (
    Setting("PORT", 8000, integer(1, 65535), "port for everything (live, ingest, query, docs)"),
    Setting("LOG_LEVEL", "INFO", choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), "logging level"),
    # The live-metrics API: hardware sampling into the ring buffer.
    Setting("SAMPLERS_ENABLED", True, boolean(), "read hardware at all (off for tests)"),
    Setting("SAMPLE_INTERVAL_SEC", 1.0, duration(3600), "tick interval of the live snapshot"),
    Setting("HISTORY_SECONDS", 300, integer(1, 86_400), "how much live history the ring buffer keeps"),
    Setting("GPU_PROCESS_INTERVAL_SEC", 5.0, duration(3600), "how often GPU process lists are refreshed"),
    Setting("ROCM_SMI_PATH", "rocm-smi", text(),
            "the `rocm-smi` executable (used when the `amdsmi` library is absent)"),
    Setting("ROCM_SMI_INTERVAL_SEC", 5.0, duration(3600), "how often `rocm-smi` runs (it takes 0.1–3 s per call)"),
    Setting("ROCM_SMI_TIMEOUT_SEC", 10.0, duration(3600), "a `rocm-smi` call running longer is killed"),
    Setting("ENABLE_NVIDIA", True, boolean(), "read NVIDIA GPUs at all"),
    Setting("ENABLE_AMD", True, boolean(), "read AMD GPUs at all"),
    Setting("GPU_INIT_RETRY_SEC", 60.0, duration(_DAY), "how often a missing NVML / amdsmi is looked for again"),
    Setting("GPU_PCIE_INTERVAL_SEC", 5.0, duration(3600),
            "how often NVIDIA PCIe throughput is read (each call blocks ~20 ms, on its own thread)"),
    # HTTP and WebSocket.
    Setting("CORS_ORIGINS", ["*"], words(),
            "allowed origins for HTTP CORS and the WebSocket handshake"),
    Setting("WS_PING_INTERVAL_SEC", 25.0, duration(3600, zero="disables"), "WebSocket keep-alive ping interval"),
    Setting("WS_SEND_TIMEOUT_SEC", 10.0, duration(3600), "a live client whose send blocks longer is dropped"),
    Setting("WS_MAX_CLIENTS", 15_000, integer(1, 1_000_000),
            "WebSockets per worker; past it a handshake gets 503, so HTTP keeps free connection slots"),
    Setting("PROMETHEUS_PATH", "/api/prometheus", url_path(), "where the Prometheus exposition is served"),
    Setting("INGEST_TOKEN", [], words(), "bearer tokens for ingest (empty: open; see Security)"),
    Setting("READ_TOKEN", [], words(), "bearer tokens for reads (empty: open; see Security)"),
    # The crawler-ingest API: storage, ingest limits and the background jobs.
    Setting("DATABASE_URL", "sqlite:///./metrics.db", database_url(), "where the history is stored",
            key="SQLALCHEMY_DATABASE_URI"),
    Setting("MAX_CONTENT_LENGTH", 16 * 1024 * 1024, integer(1, 1 << 32),
            "largest accepted request body, bytes (413 beyond)"),
    Setting("MAX_BATCH", 10_000, integer(1, 1_000_000), "most records in one ingest request (413 beyond)"),
    Setting("METRICS_RETENTION_HOURS", 168.0, duration(1e6, zero="keeps records forever", unit="hours"),
            "raw records older than this (by record timestamp) are deleted; their rollups stay"),
    Setting("ROLLUP_1M_RETENTION_DAYS", 90.0, duration(1e6, unit="days"),
            "per-minute rollups are kept this long (at least METRICS_RETENTION_HOURS)"),
    Setting("ROLLUP_1H_RETENTION_DAYS", 730.0, duration(1e6, unit="days"),
            "per-hour rollups are kept this long (at least ROLLUP_1M_RETENTION_DAYS)"),
    Setting("RETENTION_CLEAN_INTERVAL_SEC", 3600.0, duration(7 * _DAY), "how often retention runs"),
    Setting("RETENTION_CHUNK_ROWS", 5_000, integer(1, 1_000_000), "rows deleted per retention transaction"),
    Setting("ENABLE_WS_FILE", False, boolean(), "tail `INPUT_WS_PATH`"),
    Setting("ENABLE_MSG_FILE", False, boolean(), "tail `INPUT_MSG_PATH`"),
    Setting("INPUT_WS_PATH", "ws_out.jsonl", text(), "JSONL file, one record per line"),
    Setting("INPUT_MSG_PATH", "msg_out.jsonl", text(), "JSONL file, one record per line"),
    Setting("FILE_POLL_INTERVAL_SEC", 1.0, duration(3600), "file tailer polling interval"),
    Setting("SQLITE_SYNCHRONOUS", "FULL", choice("OFF", "NORMAL", "FULL", "EXTRA"), "SQLite durability (see Durability)"),
    Setting("SQLITE_BUSY_TIMEOUT_MS", 10_000, integer(0, 2**31 - 1), "longest wait of a SQLite writer for the lock"),
    # Retention, tailers and local recording run in one leader process, started by the server only.
    Setting("BACKGROUND_JOBS_ENABLED", True, boolean(), "run retention, tailers and local recording (in one worker)"),
    Setting("LEADER_POLL_INTERVAL_SEC", 1.0, duration(3600),
            "how often each process checks or takes the jobs' leadership (advisory lock / flock)"),
    Setting("REDIS_URL", "", redis_url(),
            "fan-out of committed records to every instance's /ws/fleet (empty: to the workers of this instance only)"),
    Setting("FLEET_REDIS_CHANNEL", "gpu-metrics:fleet", text(), "the Redis pub/sub channel of the fleet stream"),
    Setting("FLEET_STALE_AFTER_SEC", 300.0, duration(_DAY),
            "a fleet value older than this (or 3 of its host's intervals) is `stale`"),
    Setting("FLEET_FLUSH_INTERVAL_SEC", 0.25, duration(60, zero="sends every commit at once"),
            "at most one /ws/fleet message per client this often (newest per key)"),
    Setting("JOBS_LOCK_PATH", "", text(), "the leader lock file (empty: beside the SQLite file, else the temp dir)"),
    Setting("RECORD_INTERVAL_SEC", 10.0, duration(_DAY, zero="disables"),
            "store this machine's GPU readings as crawler records every N s"),
    Setting("RECORD_HOSTNAME", "", text(), "hostname label of locally recorded records (empty: this host's name)"),
    # Push agent (`flask agent push`): a bearer token kept off the command line, and its spool file.
    Setting("AGENT_TOKEN", "", text(), "bearer token for `flask agent push`"),
    Setting("AGENT_SPOOL_PATH", "agent-spool.jsonl", text(), "the push agent's spool file"),
    # gunicorn.conf.py (see README "Deployment").
    Setting("GUNICORN_WORKER_CLASS", "gevent", choice("gevent", "gthread", "sync"), "see Deployment"),
    Setting("GUNICORN_WORKERS", 2, integer(1, 256), "gunicorn worker processes; each has its own GIL, "
            "writer thread and samplers (see Deployment)"),
    Setting("GUNICORN_WORKER_CONNECTIONS", 20_000, integer(1, 1_000_000),
            "concurrent connections per worker: WebSockets (at most `WS_MAX_CLIENTS`) plus HTTP"),
    Setting("GUNICORN_THREADS", 1, integer(1, 10_000), "threads per worker (gthread only)"),
    Setting("GUNICORN_TIMEOUT", 60, integer(0, 86_400), "worker heartbeat timeout, seconds (0 disables)"),
    Setting("GUNICORN_ACCESS_LOG", "", text(), "access log path, `-` for stdout (empty: off)"),
)


def _shown(name: str, raw: str) -> str:
    """The value as the error line quotes it: a database URL without its password."""
    if name == "DATABASE_URL":
        try:
            return make_url(raw).render_as_string(hide_password=True)
        except ArgumentError:
            pass
    return raw


def load_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every setting's value (``app.config`` keys), from ``environ`` (default: the process's)."""
    environ = os.environ if environ is None else environ
    values = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name, "").strip()
        if not raw:
            values[setting.config_key] = setting.default
            continue
        try:
            values[setting.config_key] = setting.kind.parse(raw)
        except (ValueError, KeyError) as exc:
            reason = str(exc) if isinstance(exc, Refused) else ""
            raise ConfigError(setting.name, _shown(setting.name, raw), setting.kind.allowed, reason) from None
    _check_tiers(values)
    return values


def _check_tiers(values: Mapping[str, Any]) -> None:
    """Each rollup tier outlives the finer one (a query falls back to the next coarser tier)."""
    raw, minute, hour = (values[name] for name in
                         ("METRICS_RETENTION_HOURS", "ROLLUP_1M_RETENTION_DAYS", "ROLLUP_1H_RETENTION_DAYS"))
    if raw and not raw <= minute * 24 <= hour * 24:
        raise ConfigError("ROLLUP_1M_RETENTION_DAYS", f"{minute:g}",
                          "METRICS_RETENTION_HOURS <= ROLLUP_1M_RETENTION_DAYS * 24 "
                          "<= ROLLUP_1H_RETENTION_DAYS * 24",
                          f"the tiers must not shrink ({raw:g} h raw, {minute:g} d per-minute, {hour:g} d per-hour)")


class Config:
    """Every setting at its default; ``create_app()`` with no argument overlays the validated environment."""

    SQLALCHEMY_TRACK_MODIFICATIONS = False


for _setting in SETTINGS:
    setattr(Config, _setting.config_key, _setting.default)


def environment_config(environ: Mapping[str, str] | None = None) -> type:
    """The production configuration: ``Config`` with the environment's values (``ConfigError`` if invalid)."""
    return type("EnvironmentConfig", (Config,), load_environment(environ))


class TestConfig(Config):
    """For the test suite: defaults, not the developer's environment; no hardware threads (tests drive
    the hub by hand) and a throwaway database."""

    TESTING = True
    SAMPLERS_ENABLED = False
    # Unit tests inject fake GPU sources; real GPUs on a test machine must not leak into them.
    ENABLE_NVIDIA = False
    ENABLE_AMD = False
    BACKGROUND_JOBS_ENABLED = False
    SAMPLE_INTERVAL_SEC = 0.1
    HISTORY_SECONDS = 5
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    # Fixtures are dated (2025, 1970, even year 0001): keep them raw records, with retention still on
    # (0 would turn it off); tier tests set their own retention.
    METRICS_RETENTION_HOURS = 24 * 365 * 3000
    ROLLUP_1M_RETENTION_DAYS = ROLLUP_1H_RETENTION_DAYS = 365 * 3000
    REDIS_URL = ""  # a developer's Redis must not join the tests' fleet
    FLEET_FLUSH_INTERVAL_SEC = 0.0  # each commit streamed at once: tests read the table synchronously
