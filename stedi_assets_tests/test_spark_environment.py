"""The pseudonym key never reaches a JVM's environment (nor the Python workers it starts): a run needs it in
the driver only, and a process environment is readable (/proc/<pid>/environ, Spark's UI, crash dumps)."""

from __future__ import annotations

import os

import pytest

from stedi_assets.resources import spark as spark_resource
from stedi_assets.resources.lake import Lake
from stedi_assets.resources.spark import Spark
from stedi_assets.spark_settings import PSEUDONYM_KEY_ENV, SECRET_ENV, without_secrets

KEY = "key-that-must-stay-in-the-driver"


def test_a_runs_session_starts_without_the_key_which_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, KEY)
    seen: list[str | None] = []

    def start(settings: dict[str, str]) -> object:  # where dagster-pyspark would start the JVM
        seen.append(os.environ.get(PSEUDONYM_KEY_ENV))
        return object()

    monkeypatch.setattr(spark_resource, "spark_session_from_config", start)
    Spark(master="local[1]", lake=Lake(root="")).session  # noqa: B018 - starts the session
    assert seen == [None]
    assert os.environ[PSEUDONYM_KEY_ENV] == KEY


def test_the_secrets_come_back_even_when_the_start_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, KEY)
    with pytest.raises(RuntimeError), without_secrets():
        assert all(name not in os.environ for name in SECRET_ENV)
        raise RuntimeError("the JVM did not start")
    assert os.environ[PSEUDONYM_KEY_ENV] == KEY
