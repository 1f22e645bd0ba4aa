"""Configuration is validated once, before anything starts: one line naming the variable, its value
and what is allowed, for every entry point (``flask --app wsgi ...``, gunicorn); README's table is
rendered from the same definitions."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from config import SETTINGS, Config, ConfigError, Setting, environment_config, load_environment

ROOT = Path(__file__).resolve().parents[1]

BAD_VALUES = [
    ("SAMPLE_INTERVAL_SEC", "0", "> 0"),
    ("SAMPLE_INTERVAL_SEC", "abc", "> 0"),
    ("SAMPLE_INTERVAL_SEC", "nan", "> 0"),
    ("RETENTION_CLEAN_INTERVAL_SEC", "0", "> 0"),
    ("FILE_POLL_INTERVAL_SEC", "0", "> 0"),
    ("PORT", "abc", "an integer from 1 to 65,535"),
    ("PORT", "70000", "an integer from 1 to 65,535"),
    ("ENABLE_NVIDIA", "ture", "true/false, 1/0, yes/no or on/off"),
    ("METRICS_RETENTION_HOURS", "-1", "0 keeps records forever"),
    ("LOG_LEVEL", "loud", "one of DEBUG, INFO"),
    ("DATABASE_URL", "sqlite:////nonexistent-dir/x.db", "the directory /nonexistent-dir of the SQLite file does not exist"),
    ("DATABASE_URL", "not a url", "not a database URL"),
    ("DATABASE_URL", "nosuchdb://host/db", "no installed driver for 'nosuchdb'"),
]


def _clean_env(**values: str) -> dict[str, str]:
    """The test process's environment without any of the service's variables, plus ``values``."""
    names = {setting.name for setting in SETTINGS}
    return {k: v for k, v in os.environ.items() if k not in names} | values


def _assert_one_line(result: subprocess.CompletedProcess, name: str, value: str, allowed: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {name}={value!r}"), lines[0]
    assert allowed in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(("name", "value", "allowed"), BAD_VALUES)
def test_each_bad_value_is_refused_in_one_line(name, value, allowed):
    with pytest.raises(ConfigError) as refused:
        load_environment({name: value})
    assert str(refused.value).startswith(f"configuration error: {name}={value!r}") and allowed in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_flask_command_stops_with_one_line():
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "gpus", "show"], cwd=ROOT,
                            env=_clean_env(SAMPLE_INTERVAL_SEC="0"), capture_output=True, text=True, timeout=60)
    _assert_one_line(result, "SAMPLE_INTERVAL_SEC", "0", "> 0")


@pytest.mark.slow  # a process each: ~2 s apiece on a busy machine
@pytest.mark.parametrize(("name", "value", "allowed"), BAD_VALUES)
def test_flask_command_stops_with_one_line(name, value, allowed, tmp_path):
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "retention", "--dry-run"],
                            cwd=ROOT, env=_clean_env(**{name: value}), capture_output=True, text=True, timeout=60)
    _assert_one_line(result, name, value, allowed)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "value", "allowed"),
                         [BAD_VALUES[0], BAD_VALUES[5], BAD_VALUES[7], BAD_VALUES[10]])
def test_gunicorn_stops_with_one_line_before_forking(name, value, allowed):
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
                            cwd=ROOT, env=_clean_env(**{name: value}), capture_output=True, text=True, timeout=60)
    _assert_one_line(result, name, value, allowed)


@pytest.mark.slow
def test_start_sh_stops_with_one_line():
    result = subprocess.run(["./start.sh"], cwd=ROOT, env=_clean_env(ENABLE_NVIDIA="ture"),
                            capture_output=True, text=True, timeout=300)
    _assert_one_line(result, "ENABLE_NVIDIA", "ture", "true/false")


def test_an_unreachable_database_is_one_line_naming_the_variable_and_host():
    """A valid URL whose server is not there: config cannot know, the first connection says so."""
    url = "postgresql+psycopg://metrics:pw@127.0.0.1:1/metrics"
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT,
                            env=_clean_env(DATABASE_URL=url), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("database error: DATABASE_URL='postgresql+psycopg://metrics:***@127.0.0.1:1/metrics'")
    assert "the server at 127.0.0.1:1" in lines[0] and "pw" not in lines[0].replace("psycopg", "")


def test_a_valid_environment_reaches_the_command(tmp_path):
    env = _clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", ENABLE_NVIDIA="Off",
                     METRICS_RETENTION_HOURS="0", SAMPLE_INTERVAL_SEC="0.5")
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "retention"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "keeps records forever; nothing deleted" in result.stdout


def test_the_database_url_error_hides_its_password():
    with pytest.raises(ConfigError) as err:
        load_environment({"DATABASE_URL": "nosuchdb://user:s3cret@db.example:5432/metrics"})
    assert "s3cret" not in str(err.value) and "db.example" in str(err.value)


@pytest.mark.parametrize("word", ["true", "TRUE", "1", "yes", "On", " on "])
def test_booleans_accept_the_true_words(word):
    assert load_environment({"ENABLE_AMD": word})["ENABLE_AMD"] is True


@pytest.mark.parametrize("word", ["false", "False", "0", "no", "OFF"])
def test_booleans_accept_the_false_words(word):
    assert load_environment({"ENABLE_AMD": word})["ENABLE_AMD"] is False


@pytest.mark.parametrize("word", ["ture", "2", "y", "enabled", "-1"])
def test_booleans_refuse_anything_else(word):
    with pytest.raises(ConfigError, match="ENABLE_AMD"):
        load_environment({"ENABLE_AMD": word})


def test_zero_means_off_only_where_documented():
    values = load_environment({"METRICS_RETENTION_HOURS": "0", "RECORD_INTERVAL_SEC": "0", "WS_PING_INTERVAL_SEC": "0"})
    assert values["METRICS_RETENTION_HOURS"] == values["RECORD_INTERVAL_SEC"] == values["WS_PING_INTERVAL_SEC"] == 0
    for name in ("SAMPLE_INTERVAL_SEC", "RETENTION_CLEAN_INTERVAL_SEC", "FILE_POLL_INTERVAL_SEC",
                 "GPU_PROCESS_INTERVAL_SEC", "ROCM_SMI_INTERVAL_SEC", "GPU_INIT_RETRY_SEC"):
        with pytest.raises(ConfigError, match=name):
            load_environment({name: "0"})


def test_empty_means_default_and_values_reach_the_app_config():
    config = environment_config({"PORT": "", "SAMPLE_INTERVAL_SEC": "2.5", "DATABASE_URL": "sqlite://",
                                 "READ_TOKEN": "a, b", "LOG_LEVEL": "debug"})
    assert config.PORT == 8000 and config.SAMPLE_INTERVAL_SEC == 2.5 and config.LOG_LEVEL == "DEBUG"
    assert config.SQLALCHEMY_DATABASE_URI == "sqlite://" and config.READ_TOKEN == ["a", "b"]


def _shown_default(setting: Setting) -> str:
    value = setting.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        value = ",".join(value)
    if isinstance(value, float):
        value = f"{value:g}"
    return f"`{value}`" if value != "" else "(empty)"


def _readme_rows() -> list[str]:
    section = (ROOT / "README.md").read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if re.match(r"\| `[A-Z0-9_]+` \|", line)]


def test_every_default_is_a_valid_value():
    for setting in SETTINGS:
        shown = _shown_default(setting).strip("`")
        if shown != "(empty)":
            assert setting.kind.parse(shown) == setting.default, setting.name
        assert getattr(Config, setting.config_key) == setting.default


def test_readme_table_is_the_definitions():
    expected = [f"| `{s.name}` | {_shown_default(s)} | {s.kind.allowed} | {s.meaning} |" for s in SETTINGS]
    assert _readme_rows() == expected, "README 'Configuration' should list exactly:\n" + "\n".join(expected)


def test_rollup_tiers_must_not_shrink():
    with pytest.raises(ConfigError, match="ROLLUP_1M_RETENTION_DAYS='1'.*tiers must not shrink"):
        load_environment({"METRICS_RETENTION_HOURS": "48", "ROLLUP_1M_RETENTION_DAYS": "1"})
    with pytest.raises(ConfigError, match="ROLLUP_1M_RETENTION_DAYS='90'"):
        load_environment({"ROLLUP_1H_RETENTION_DAYS": "30"})
    # Records kept forever: nothing is older than raw retention, so the tiers' days do not matter.
    values = load_environment({"METRICS_RETENTION_HOURS": "0", "ROLLUP_1M_RETENTION_DAYS": "1"})
    assert values["ROLLUP_1M_RETENTION_DAYS"] == 1
