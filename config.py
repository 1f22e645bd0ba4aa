"""All configuration, read from the environment in one place.

Every other module reads ``current_app.config``; nothing else touches ``os.environ``.
"""
from __future__ import annotations

import os


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else float(raw)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else int(raw)


def _env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


class Config:
    """Production defaults; each value can be overridden by the environment variable of the same name."""

    PORT = _env_int("PORT", 8000)
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()

    # Live sampling (seed 000)
    SAMPLERS_ENABLED = _env_bool("SAMPLERS_ENABLED", True)
    SAMPLE_INTERVAL_SEC = _env_float("SAMPLE_INTERVAL_SEC", 1.0)
    HISTORY_SECONDS = _env_int("HISTORY_SECONDS", 300)
    GPU_PROCESS_INTERVAL_SEC = _env_float("GPU_PROCESS_INTERVAL_SEC", 5.0)
    ROCM_SMI_INTERVAL_SEC = _env_float("ROCM_SMI_INTERVAL_SEC", 5.0)
    ROCM_SMI_TIMEOUT_SEC = _env_float("ROCM_SMI_TIMEOUT_SEC", 10.0)
    ROCM_SMI_PATH = os.environ.get("ROCM_SMI_PATH", "rocm-smi")
    # GPU readers (issue 3): off switches for a vendor, and how often a missing NVML or amdsmi is retried.
    ENABLE_NVIDIA = _env_bool("ENABLE_NVIDIA", True)
    ENABLE_AMD = _env_bool("ENABLE_AMD", True)
    GPU_INIT_RETRY_SEC = _env_float("GPU_INIT_RETRY_SEC", 60.0)

    # HTTP and WebSocket
    CORS_ORIGINS = _env_list("CORS_ORIGINS", "*")
    WS_PING_INTERVAL_SEC = _env_float("WS_PING_INTERVAL_SEC", 25.0)
    WS_SEND_TIMEOUT_SEC = _env_float("WS_SEND_TIMEOUT_SEC", 10.0)
    PROMETHEUS_PATH = os.environ.get("PROMETHEUS_PATH", "/api/prometheus")
    # Bearer tokens (metrics_app/auth.py): one or a comma-separated list each; empty leaves the group open.
    INGEST_TOKEN = _env_list("INGEST_TOKEN", "")
    READ_TOKEN = _env_list("READ_TOKEN", "")

    # Storage and ingest (seed 003)
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", "sqlite:///./metrics.db")
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024)
    MAX_BATCH = _env_int("MAX_BATCH", 10_000)
    METRICS_RETENTION_HOURS = _env_float("METRICS_RETENTION_HOURS", 168)
    RETENTION_CLEAN_INTERVAL_SEC = _env_float("RETENTION_CLEAN_INTERVAL_SEC", 3600)
    ENABLE_WS_FILE = _env_bool("ENABLE_WS_FILE", False)
    ENABLE_MSG_FILE = _env_bool("ENABLE_MSG_FILE", False)
    INPUT_WS_PATH = os.environ.get("INPUT_WS_PATH", "ws_out.jsonl")
    INPUT_MSG_PATH = os.environ.get("INPUT_MSG_PATH", "msg_out.jsonl")
    FILE_POLL_INTERVAL_SEC = _env_float("FILE_POLL_INTERVAL_SEC", 1.0)
    SQLITE_SYNCHRONOUS = os.environ.get("SQLITE_SYNCHRONOUS", "FULL")
    SQLITE_BUSY_TIMEOUT_MS = _env_int("SQLITE_BUSY_TIMEOUT_MS", 10_000)
    RETENTION_CHUNK_ROWS = _env_int("RETENTION_CHUNK_ROWS", 5_000)
    # Retention and tailers (one leader process); off for tests and `flask` commands.
    BACKGROUND_JOBS_ENABLED = _env_bool("BACKGROUND_JOBS_ENABLED", True)
    JOBS_LOCK_PATH = os.environ.get("JOBS_LOCK_PATH", "")  # default: beside the SQLite file, else in /tmp
    # Local history (issue 5): this machine's GPUs stored as crawler records by the jobs' leader.
    RECORD_INTERVAL_SEC = _env_float("RECORD_INTERVAL_SEC", 10.0)  # 0 disables
    RECORD_HOSTNAME = os.environ.get("RECORD_HOSTNAME", "")  # default: platform.node()
    # Push agent (`flask agent push`): a bearer token kept off the command line, and its spool file.
    AGENT_TOKEN = os.environ.get("AGENT_TOKEN", "")
    AGENT_SPOOL_PATH = os.environ.get("AGENT_SPOOL_PATH", "agent-spool.jsonl")
    # Fleet (GET /fleet, WS /ws/fleet): with REDIS_URL every instance sees every instance's records.
    REDIS_URL = os.environ.get("REDIS_URL", "")  # empty: each process streams what it stored itself
    FLEET_REDIS_CHANNEL = os.environ.get("FLEET_REDIS_CHANNEL", "gpu-metrics:fleet")
    FLEET_STALE_AFTER_SEC = _env_float("FLEET_STALE_AFTER_SEC", 300.0)  # bound on 3x a host's interval
    FLEET_FLUSH_INTERVAL_SEC = _env_float("FLEET_FLUSH_INTERVAL_SEC", 0.25)  # at most 4 messages/s a client
    # Jobs leader: how often a follower tries to take the lead (and the leader checks it still has it).
    LEADER_POLL_INTERVAL_SEC = _env_float("LEADER_POLL_INTERVAL_SEC", 1.0)


class TestConfig(Config):
    """For the test suite: no hardware threads (tests drive the hub by hand) and a throwaway database."""

    TESTING = True
    SAMPLERS_ENABLED = False
    # Unit tests inject fake GPU sources; real GPUs on a test machine must not leak into them.
    ENABLE_NVIDIA = False
    ENABLE_AMD = False
    BACKGROUND_JOBS_ENABLED = False
    SAMPLE_INTERVAL_SEC = 0.1
    HISTORY_SECONDS = 5
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    CORS_ORIGINS = ["*"]
    # A developer's exported tokens must not turn every test's request into a 401.
    INGEST_TOKEN: list[str] = []
    READ_TOKEN: list[str] = []
    REDIS_URL = ""  # a developer's Redis must not join the tests' fleet
    FLEET_FLUSH_INTERVAL_SEC = 0.0  # each commit streamed at once: tests read the table synchronously
