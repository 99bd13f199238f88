"""The whole stack for browser tests: Daphne, a Celery worker on both queues, Celery beat and the
real vLLM server, started with the same commands as `make demo`, against the test database."""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from interview_platform import devstack

# Playwright's sync API keeps an event loop in the test's thread; Django would then refuse the
# ORM calls the test makes to check the database. They run between browser steps, never inside
# the loop, so the guard is lifted for this test process only.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _test_database_url() -> str:
    """DATABASE_URL pointed at the database pytest-django created, for the child processes."""
    parsed = urllib.parse.urlparse(os.environ["DATABASE_URL"])
    return urllib.parse.urlunparse(parsed._replace(path="/" + settings.DATABASES["default"]["NAME"]))


@dataclass
class LiveStack:
    base_url: str
    log_dir: Path


@pytest.fixture(scope="module")
def live_stack(django_db_setup, django_db_blocker, llm_base_url) -> Iterator[LiveStack]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "SESSION_SWEEP_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    stack = devstack.Stack(env=env)
    try:
        stack.start("e2e-worker", devstack.celery_worker_command("interviewer,grading", 8))
        stack.start("e2e-beat", devstack.celery_beat_command(devstack.VAR / "e2e-celerybeat-schedule"))
        stack.start("e2e-web", devstack.daphne_command(port))
        base_url = f"http://127.0.0.1:{port}"
        devstack.wait_until(lambda: devstack.http_answers(base_url + "/healthz"), timeout=60, what="daphne")
        stack.check_alive()
        yield LiveStack(base_url=base_url, log_dir=devstack.LOG_DIR)
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: `make test` installs it (or set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
