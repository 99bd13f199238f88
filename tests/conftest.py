"""Shared fixtures. Every test runs against PostgreSQL with pgvector and Redis (never SQLite, never an
in-memory channel layer); `make test` starts both and the vLLM server (interview_platform.devstack)."""

from __future__ import annotations

import os

import pytest
import redis
from django.conf import settings

from interview_platform import devstack


def pytest_configure(config: pytest.Config) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(f"the tests need PostgreSQL with pgvector, not {engine}; run `make test`")
    if not devstack.redis_answers(settings.REDIS_URL):
        raise pytest.UsageError(f"the tests need Redis at {settings.REDIS_URL}; run `make test`")


@pytest.fixture(scope="session", autouse=True)
def _clean_test_redis() -> None:
    """The test Redis database starts empty, so no frame or flag leaks in from an earlier run."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(scope="session")
def llm_base_url() -> str:
    """The real model server (vLLM). `make test` starts it before pytest; this waits until it answers.

    Fails (never skips) when there is none: these tests are what proves the model path works.
    """
    base_url = settings.LLM_BASE_URL
    if devstack.llm_answers(base_url):
        return base_url
    if not os.environ.get("LLM_BASE_URL"):
        pytest.fail(f"no model server at {base_url}: run the suite with `make test`, or set LLM_BASE_URL")
    devstack.wait_for_llm(None, base_url, timeout=float(os.environ.get("LLM_WAIT_SECONDS", "900")))
    return base_url
