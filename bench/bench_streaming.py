"""Streaming overhead: what the platform adds between the model's tokens and the browser's socket.

    python -m interview_platform.devstack run python bench/bench_streaming.py \
        [--replies N] [--concurrency C] [--tokens-per-second R] [--tokens T]

The token source is the SCRIPTED server of tests/fakes/scripted_llm.py, a fault injector used here
as a fixed-rate token source: it emits T fixed tokens at R tokens/s whatever the prompt, so the
figures measure the platform (Daphne, the consumer, PostgreSQL, Celery, Redis, the channel layer),
not the model. It is never a stand-in for vLLM; a model's own speed comes on top of these figures.

Two runs over the same token source, each with C concurrent streams and N replies in all:

- baseline: the OpenAI client straight against the scripted server (interview_platform.llm.
  stream_chat, a fresh client per reply as the platform does): time to first token and the arrival
  time of every token;
- platform: C WebSocket clients on C interview sessions (ws/interviews/<id>/, session cookie,
  Origin header), each sending `candidate.message` frames and waiting for the interviewer's reply
  to complete before sending the next (a newer message would cancel a streaming reply). Measured
  from the send: the ack, turn.started, the first turn.delta, every delta, turn.completed; the
  streamed text is checked against the final turn and the scripted tokens (no gap, no duplicate).

The platform runs against its own database (`bench`, on the server DATABASE_URL names), Redis
database 13 (--redis-url) with its own channel and cache prefixes, Daphne on a free port and one
Celery worker on queue `interviewer`; everything started here is stopped on exit, error or Ctrl-C.
Results: printed, written to bench/results/streaming-<date>.json, and summarized in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import logging
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # interview_platform, interviews, tests.fakes, tests.factories

from interview_platform import devstack  # noqa: E402  (needs ROOT on sys.path)
from tests.fakes.scripted_llm import Script, ScriptedLLM  # noqa: E402

BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
BENCH_DATABASE = "bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"  # not 14: `make test` uses (and flushes) that one
CHANNEL_PREFIX = "asgi-bench"
CACHE_PREFIX = "ip-bench"
QUESTION_SLUG = "bench-rate-limiter"
BENCH_USERNAME = "bench-candidate"
WORKER_CONCURRENCY = 8  # as `make demo` runs the interviewer queue
REPLY_TEXT = (
    "Good start. Before we go further, how many requests per second does the busiest API key "
    "send at peak, and where would you keep the counters so that every gateway node sees the "
    "same count without a round trip to a single primary on each request? Walk me through it."
)
CANDIDATE_LINES = [
    "I would use a token bucket per API key, with the counters in Redis.",
    "Peak is about 2M requests per second in total, the busiest key maybe 5k.",
    "Each gateway keeps a local bucket and syncs with Redis every 100 ms.",
    "On a Redis failure the gateways fail open, with a local limit as a floor.",
]

RESULTS_MD_HEADER = """# Benchmark results

Appended by the benchmarks in this folder, newest last; the JSON behind each entry is in
`bench/results/`. See bench/README.md for how to run them and how to read the figures.

`bench_streaming.py` measures the platform's streaming overhead: the time the platform adds
between a model's tokens and the browser's WebSocket (the consumer's transaction and ack, the
Celery hop, the prompt build, the coalescing of deltas, Redis and the channel layer, Daphne).
The tokens come from the scripted server of `tests/fakes/scripted_llm.py`, a fault injector used
as a fixed-rate token source, so the model's speed is taken out: the baseline is the same token
stream read directly with the OpenAI client, and the platform figures are compared with it.
Figures depend on the machine and on what else ran on it (see the load average of each entry).
"""


# --- statistics --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


# --- a minimal WebSocket client (RFC 6455: text frames, ping/pong, close; no extensions) --------


class WebSocketClosed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"WebSocket closed ({code}) {reason}".strip())
        self.code = code


class WebSocket:
    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str, headers: dict[str, str]) -> WebSocket:
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        request = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        writer.write(("\r\n".join(request) + "\r\n\r\n").encode())
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        if status_line.split(" ")[1:2] != ["101"]:
            writer.close()
            raise WebSocketClosed(0, f"handshake refused: {status_line}")
        response = {
            n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines if line)
        }
        accept = base64.b64encode(hashlib.sha1((key + cls.GUID).encode()).digest()).decode()  # noqa: S324
        if response.get("sec-websocket-accept") != accept:
            writer.close()
            raise WebSocketClosed(0, "handshake: bad Sec-WebSocket-Accept")
        return cls(reader, writer)

    async def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytearray([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header.append(0x80 | length)
        elif length < 1 << 16:
            header.append(0x80 | 126)
            header += struct.pack("!H", length)
        else:
            header.append(0x80 | 127)
            header += struct.pack("!Q", length)
        mask = os.urandom(4)
        masked = int.from_bytes(payload, "big") ^ int.from_bytes((mask * (length // 4 + 1))[:length], "big")
        self.writer.write(bytes(header) + mask + (masked.to_bytes(length, "big") if length else b""))
        await self.writer.drain()

    async def send_text(self, text: str) -> None:
        await self._send_frame(0x1, text.encode())

    async def recv_text(self) -> str:
        fragments: list[bytes] = []
        while True:
            first, second = await self.reader.readexactly(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            mask = await self.reader.readexactly(4) if second & 0x80 else b""
            payload = await self.reader.readexactly(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:  # close
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                with contextlib.suppress(Exception):
                    await self._send_frame(0x8, payload[:2])
                raise WebSocketClosed(code, payload[2:].decode(errors="replace"))
            if opcode == 0x9:  # ping
                await self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:  # pong
                continue
            fragments.append(payload)
            if first & 0x80:
                return b"".join(fragments).decode()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._send_frame(0x8, struct.pack("!H", 1000))
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


# --- records -----------------------------------------------------------------------------------


@dataclass
class BaselineReply:
    slot: int
    ok: bool
    error: str = ""
    ttft_ms: float | None = None
    total_ms: float | None = None
    chunks: int = 0
    token_arrivals_ms: list[float] = field(default_factory=list)
    text_matches: bool = False


@dataclass
class PlatformReply:
    slot: int
    session_id: int
    warmup: bool = False
    ok: bool = False
    error: str = ""
    turn_id: int | None = None
    status: str = ""
    ack_ms: float | None = None
    started_ms: float | None = None
    ttft_ms: float | None = None
    last_delta_ms: float | None = None
    total_ms: float | None = None
    frames: int = 0
    max_frame_gap_ms: float | None = None
    seq_in_order: bool = False
    seq_contiguous: bool = False
    offsets_contiguous: bool = False
    text_matches_final: bool = False
    text_matches_tokens: bool = False
    stray_frames: int = 0
    socket_closed: bool = False
    token_arrivals_ms: list[float] = field(default_factory=list)
    worker_ttft_ms: float | None = None
    worker_tokens_per_second: float | None = None
    rows_ms: float | None = None


# --- baseline ----------------------------------------------------------------------------------


async def baseline_reply(slot: int, tokens: list[str]) -> BaselineReply:
    from interview_platform import llm

    expected = "".join(tokens)
    record = BaselineReply(slot=slot, ok=False)
    messages = [
        {"role": "system", "content": "You are a system-design interviewer."},
        {"role": "user", "content": CANDIDATE_LINES[slot % len(CANDIDATE_LINES)]},
    ]
    client = llm.async_client()  # a fresh client (and connection) per reply, as streaming.py does
    text = ""
    started = time.perf_counter()
    try:
        stats = llm.StreamStats()
        async for delta in llm.stream_chat(client, messages, max_tokens=len(tokens) + 16, stats=stats):
            record.token_arrivals_ms.append(round((time.perf_counter() - started) * 1000, 2))
            text += delta
        record.total_ms = (time.perf_counter() - started) * 1000
    except Exception as error:  # recorded and reported
        record.error = f"{type(error).__name__}: {error}"
        return record
    finally:
        await client.close()
    record.chunks = len(record.token_arrivals_ms)
    record.ttft_ms = record.token_arrivals_ms[0] if record.token_arrivals_ms else None
    record.text_matches = text == expected
    record.ok = record.text_matches
    if not record.ok:
        record.error = "streamed text differs from the scripted tokens"
    return record


async def run_baseline(
    replies: int, concurrency: int, tokens: list[str]
) -> tuple[list[BaselineReply], float]:
    await baseline_reply(0, tokens)  # warm-up, not counted (imports, first connection)
    shares = split(replies, concurrency)

    async def slot_run(slot: int) -> list[BaselineReply]:
        return [await baseline_reply(slot, tokens) for _ in range(shares[slot])]

    started = time.perf_counter()
    results = await asyncio.gather(*(slot_run(slot) for slot in range(concurrency)))
    return [r for slot in results for r in slot], time.perf_counter() - started


# --- platform ----------------------------------------------------------------------------------


CLOSED = "bench.closed"  # put in a connection's queue by its reader when the server closes the socket


@dataclass
class Connection:
    ws: WebSocket
    frames: asyncio.Queue[tuple[float, dict[str, Any]]]
    reader: asyncio.Task[None]
    sync: dict[str, Any]
    opened: float


@dataclass
class SocketClose:
    """The server closed a socket the benchmark did not close: each one is a finding."""

    session_id: int
    code: int | None
    reason: str
    seconds_open: float
    seconds_since_last_frame: float
    during: str


async def open_connection(port: int, session_id: int, cookie: str) -> Connection:
    ws = await WebSocket.connect(
        "127.0.0.1",
        port,
        f"/ws/interviews/{session_id}/",
        {"Origin": f"http://127.0.0.1:{port}", "Cookie": f"sessionid={cookie}"},
    )
    frames: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()

    async def read() -> None:
        code, reason = None, "connection lost"
        try:
            while True:
                text = await ws.recv_text()
                frames.put_nowait((time.perf_counter(), json.loads(text)))
        except WebSocketClosed as closed:
            code, reason = closed.code, str(closed)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            reason = f"{type(error).__name__}: {error}"
        frames.put_nowait((time.perf_counter(), {"type": CLOSED, "code": code, "reason": reason}))

    reader = asyncio.create_task(read())
    _when, sync = await asyncio.wait_for(frames.get(), 30)
    if sync.get("type") != "sync":
        raise RuntimeError(f"expected a sync frame on connect, got {sync}")
    return Connection(ws, frames, reader, sync, time.perf_counter())


async def close_connection(connection: Connection) -> None:
    connection.reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await connection.reader
    await connection.ws.close()


def is_interviewer_end(frame: dict[str, Any]) -> bool:
    return frame.get("type") in ("turn.completed", "turn.failed") and frame["turn"]["role"] == "interviewer"


async def platform_reply(
    connection: Connection,
    *,
    slot: int,
    session_id: int,
    text: str,
    tokens: list[str],
    limit_s: float,
    closes: list[SocketClose],
) -> PlatformReply:
    record = PlatformReply(slot=slot, session_id=session_id)
    while not connection.frames.empty():  # nothing should be left over from the previous reply
        _when, frame = connection.frames.get_nowait()
        if frame["type"] == CLOSED:
            raise RuntimeError("platform_reply on a closed connection")
        record.stray_frames += 1
    client_id = uuid.uuid4().hex
    frames: list[tuple[float, dict[str, Any]]] = []
    sent = time.perf_counter()
    await connection.ws.send_text(
        json.dumps({"type": "candidate.message", "text": text, "client_id": client_id})
    )
    try:
        while True:
            remaining = limit_s - (time.perf_counter() - sent)
            when, frame = await asyncio.wait_for(connection.frames.get(), max(0.01, remaining))
            if frame["type"] == CLOSED:
                last = frames[-1][0] if frames else sent
                closes.append(
                    SocketClose(
                        session_id,
                        frame["code"],
                        frame["reason"],
                        when - connection.opened,
                        when - last,
                        "warm-up" if slot < 0 else "reply",
                    )
                )
                record.socket_closed = True
                raise RuntimeError(
                    f"the server closed the socket ({frame['reason']}) {(when - sent) * 1000:.0f} ms after "
                    f"the send, {(when - last) * 1000:.0f} ms after the last frame"
                )
            frames.append((when, frame))
            if is_interviewer_end(frame):
                break
            if frame.get("type") == "error":
                raise RuntimeError(f"error frame: {frame.get('code')}: {frame.get('message')}")
    except TimeoutError:
        record.error = f"no turn.completed within {limit_s:.0f} s ({len(frames)} frames)"
    except RuntimeError as error:
        record.error = str(error)
    analyse(record, sent, client_id, frames, tokens)
    return record


def analyse(
    record: PlatformReply,
    sent: float,
    client_id: str,
    frames: list[tuple[float, dict[str, Any]]],
    tokens: list[str],
) -> None:
    def ms(when: float) -> float:
        return (when - sent) * 1000

    ack = next(
        ((w, f) for w, f in frames if f["type"] == "turn.ack" and f.get("client_id") == client_id), None
    )
    started = next(
        ((w, f) for w, f in frames if f["type"] == "turn.started" and f["turn"]["role"] == "interviewer"),
        None,
    )
    end = next(((w, f) for w, f in frames if is_interviewer_end(f)), None)
    if ack is not None:
        record.ack_ms = ms(ack[0])
        if not ack[1].get("created"):
            record.error = record.error or "the ack says the message was not created (client_id reused?)"
    if started is not None:
        record.started_ms = ms(started[0])
        record.turn_id = started[1]["turn"]["id"]
    if end is not None:
        record.total_ms = ms(end[0])
        record.turn_id = end[1]["turn"]["id"]
        record.status = end[1]["turn"]["status"]
    deltas = [(w, f) for w, f in frames if f["type"] == "turn.delta" and f["turn_id"] == record.turn_id]
    record.frames = len(deltas)
    if deltas:
        record.ttft_ms = ms(deltas[0][0])
        record.last_delta_ms = ms(deltas[-1][0])
        gaps = [(b[0] - a[0]) * 1000 for a, b in itertools.pairwise(deltas)]
        record.max_frame_gap_ms = max(gaps) if gaps else 0.0
    seqs = [f["seq"] for _, f in deltas]
    record.seq_in_order = seqs == sorted(seqs)
    record.seq_contiguous = sorted(seqs) == list(range(1, len(seqs) + 1))
    streamed, contiguous = "", True
    for _, frame in sorted(deltas, key=lambda d: d[1]["seq"]):
        if frame["offset"] != len(streamed):
            contiguous = False
        streamed = streamed[: frame["offset"]] + frame["text"]  # apply by offset, as room.js does
    record.offsets_contiguous = contiguous
    expected = "".join(tokens)
    final = end[1]["turn"]["content"] if end is not None else None
    record.text_matches_final = final is not None and streamed.strip() == final
    record.text_matches_tokens = streamed == expected
    # Arrival of each scripted token: the first delta (in arrival order) that reaches its last char.
    ends, position = [], 0
    for token in tokens:
        position += len(token)
        ends.append(position)
    reached, arrivals, index = 0, [], 0
    for when, frame in deltas:
        reached = max(reached, frame["offset"] + len(frame["text"]))
        while index < len(ends) and ends[index] <= reached:
            arrivals.append(round(ms(when), 2))
            index += 1
    record.token_arrivals_ms = arrivals
    checks = {
        "ack": ack is not None,
        "turn.started": started is not None,
        "turn.completed": end is not None and record.status == "complete",
        "deltas in order": record.seq_in_order,
        "no missing delta": record.seq_contiguous,
        "offsets contiguous": record.offsets_contiguous,
        "streamed == final turn": record.text_matches_final,
        "streamed == scripted tokens": record.text_matches_tokens,
        "no stray frames": record.stray_frames == 0,
    }
    failed = [name for name, passed in checks.items() if not passed]
    record.ok = not failed and not record.error
    if failed and not record.error:
        record.error = "failed: " + ", ".join(failed)


async def run_platform(
    *,
    port: int,
    cookie: str,
    plan: list[list[tuple[int, int]]],
    tokens: list[str],
    limit_s: float,
    stack: devstack.Stack,
) -> tuple[list[PlatformReply], list[PlatformReply], list[SocketClose], float]:
    """`plan[slot]` lists (session_id, replies on it); the first session of slot 0 starts with a
    warm-up reply (the worker loads its embedding model, Daphne and PostgreSQL warm up).

    A socket the server closes is reconnected, as the browser does (room.js), and recorded."""
    warmups: list[PlatformReply] = []
    closes: list[SocketClose] = []

    async def reopen(connection: Connection, session_id: int, during: str) -> Connection:
        """Reconnects if the server closed `connection` (recording the close if not yet recorded)."""
        if not connection.reader.done():
            return connection
        while not connection.frames.empty():
            when, frame = connection.frames.get_nowait()
            if frame["type"] == CLOSED:
                closes.append(
                    SocketClose(
                        session_id, frame["code"], frame["reason"], when - connection.opened, 0.0, during
                    )
                )
        await close_connection(connection)
        return await open_connection(port, session_id, cookie)

    async def warm_up() -> None:
        session_id = plan[0][0][0]
        connection = await open_connection(port, session_id, cookie)
        sent = time.perf_counter()
        deadline = sent + max(limit_s, 180)
        try:
            record = await platform_reply(
                connection,
                slot=-1,
                session_id=session_id,
                text="Hello, shall we start?",
                tokens=tokens,
                limit_s=max(limit_s, 180),
                closes=closes,
            )
            # The socket may have been closed by the server before the reply came: reconnect, as the
            # browser does, until the transcript (sync frame) or a frame shows the reply finished.
            while record.socket_closed:
                if time.perf_counter() > deadline:
                    raise RuntimeError("the warm-up reply did not finish within 180 s")
                connection = await reopen(connection, session_id, "warm-up")
                last = connection.sync["turns"][-1]
                if (
                    last["role"] == "interviewer"
                    and last["status"] != "streaming"
                    and len(connection.sync["turns"]) > 2
                ):
                    record.status = last["status"]
                    break
                when, frame = await asyncio.wait_for(connection.frames.get(), deadline - time.perf_counter())
                if frame["type"] == CLOSED:
                    closes.append(
                        SocketClose(
                            session_id,
                            frame["code"],
                            frame["reason"],
                            when - connection.opened,
                            0.0,
                            "warm-up",
                        )
                    )
                    continue
                if is_interviewer_end(frame):
                    record.status = frame["turn"]["status"]
                    break
            if record.socket_closed:
                record.total_ms = (time.perf_counter() - sent) * 1000
                record.ok = record.status == "complete"
        finally:
            await close_connection(connection)
        record.warmup = True
        warmups.append(record)
        if record.status != "complete":
            raise RuntimeError(f"the warm-up reply failed: {record.error or record.status}")

    async def slot_run(slot: int) -> list[PlatformReply]:
        records: list[PlatformReply] = []
        for session_id, count in plan[slot]:
            if count <= 0:
                continue
            connection = await open_connection(port, session_id, cookie)
            try:
                for index in range(count):
                    connection = await reopen(connection, session_id, "between replies")
                    line = CANDIDATE_LINES[(slot + index) % len(CANDIDATE_LINES)]
                    records.append(
                        await platform_reply(
                            connection,
                            slot=slot,
                            session_id=session_id,
                            text=f"{line} ({index})",
                            tokens=tokens,
                            limit_s=limit_s,
                            closes=closes,
                        )
                    )
            finally:
                await close_connection(connection)
        return records

    async def guarded(coroutine: Any) -> Any:
        """Runs `coroutine`, failing at once (with the child's log) if the worker or Daphne dies."""

        async def watchdog() -> None:
            while True:
                stack.check_alive()
                await asyncio.sleep(1)

        work, guard = asyncio.ensure_future(coroutine), asyncio.ensure_future(watchdog())
        try:
            await asyncio.wait([work, guard], return_when=asyncio.FIRST_COMPLETED)
            if guard.done():
                work.cancel()
                guard.result()  # raises StackError
            return work.result()
        finally:
            for task in (work, guard):
                task.cancel()
            await asyncio.gather(work, guard, return_exceptions=True)

    await guarded(warm_up())
    started = time.perf_counter()
    results = await guarded(asyncio.gather(*(slot_run(slot) for slot in range(len(plan)))))
    return [r for slot in results for r in slot], warmups, closes, time.perf_counter() - started


# --- setup -------------------------------------------------------------------------------------


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def database_url(base_url: str, name: str) -> str:
    parsed = urllib.parse.urlparse(base_url)
    return urllib.parse.urlunparse(parsed._replace(path="/" + name))


def ensure_database(base_url: str, name: str) -> str:
    import psycopg

    url = database_url(base_url, name)
    with psycopg.connect(database_url(base_url, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return url


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in (8000, 8801):
            return port


def prepare_data(sessions_needed: int) -> tuple[str, list[int]]:
    """Migrates the bench database; returns a session cookie and `sessions_needed` fresh sessions."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from interviews import services
    from interviews.models import Question
    from interviews.seeding import criterion_embed_missing
    from tests.factories import CriterionFactory, QuestionFactory

    call_command("migrate", interactive=False, verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username=BENCH_USERNAME)
    question = Question.objects.filter(slug=QUESTION_SLUG).first()
    if question is None:
        question = QuestionFactory(slug=QUESTION_SLUG)
        for title, description in [
            ("Algorithm choice", "Chooses a rate-limiting algorithm and justifies it."),
            (
                "Counter storage",
                "Places the counters so every gateway sees one count, and says what it costs.",
            ),
            ("Failure modes", "Says what happens when the counter store is slow or down."),
        ]:
            CriterionFactory(question=question, title=title, description=description)
    criterion_embed_missing()  # the prompt's pgvector query then runs as in production
    sessions = [services.session_start(candidate=user, question=question).pk for _ in range(sessions_needed)]
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value, sessions


def session_plan(
    replies: int, concurrency: int, per_session: int, session_ids: list[int]
) -> list[list[tuple[int, int]]]:
    """Per slot: (session, replies) pairs, at most `per_session` messages a session (rate limit).
    Slot 0's first session also carries the warm-up message."""
    ids = iter(session_ids)
    plan = []
    for slot, share in enumerate(split(replies, concurrency)):
        pairs, left, first = [], share, True
        while left > 0 or first:
            room = per_session - (1 if slot == 0 and first else 0)
            take = min(left, room)
            pairs.append((next(ids), take))
            left -= take
            first = False
        plan.append(pairs)
    return plan


def sessions_needed(replies: int, concurrency: int, per_session: int) -> int:
    total = 0
    for slot, share in enumerate(split(replies, concurrency)):
        messages = share + (1 if slot == 0 else 0)
        total += max(1, math.ceil(messages / per_session))
    return total


def worker_figures(records: list[PlatformReply]) -> None:
    """What the database saw: the worker's own TTFT and tokens/s (saved on the turn), and the time
    from the candidate's row to the reply's row (commit, Celery hop, embedding, interviewer_turn_begin)."""
    from interviews.models import Turn

    turns = Turn.objects.select_related("reply_to").in_bulk([r.turn_id for r in records if r.turn_id])
    for record in records:
        turn = turns.get(record.turn_id) if record.turn_id else None
        if turn is None:
            continue
        record.worker_ttft_ms = turn.ttft_ms
        record.worker_tokens_per_second = turn.tokens_per_second
        if turn.reply_to is not None:
            record.rows_ms = (turn.created_at - turn.reply_to.created_at).total_seconds() * 1000


# --- report ------------------------------------------------------------------------------------


def invoked_command() -> str:
    own = shlex.join([sys.executable, *sys.argv])
    with contextlib.suppress(OSError):
        parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
        words = [w.decode() for w in parent if w]
        if "interview_platform.devstack" in words:
            return shlex.join(words)
    return own


def git_revision() -> str:
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        rev = subprocess.run(  # noqa: S603 (fixed argv)
            [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603 (fixed argv)
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return rev + (" (with uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def build_results(
    args: argparse.Namespace,
    meta: dict[str, Any],
    baseline: list[BaselineReply],
    baseline_seconds: float,
    platform_records: list[PlatformReply],
    warmups: list[PlatformReply],
    closes: list[SocketClose],
    platform_seconds: float,
    tokens: list[str],
) -> dict[str, Any]:
    ok_base = [r for r in baseline if r.ok]
    ok_plat = [r for r in platform_records if r.ok]
    # Per token index, the median baseline arrival; the platform's lag is measured against it.
    base_by_token = [
        percentile([r.token_arrivals_ms[i] for r in ok_base if len(r.token_arrivals_ms) > i], 50)
        for i in range(len(tokens))
    ]
    lags = [
        arrival - base_by_token[i]
        for r in ok_plat
        for i, arrival in enumerate(r.token_arrivals_ms)
        if base_by_token[i] is not None
    ]
    b = {
        "ttft_ms": summary([r.ttft_ms for r in ok_base if r.ttft_ms is not None]),
        "total_ms": summary([r.total_ms for r in ok_base if r.total_ms is not None]),
        "chunks_per_reply": summary([float(r.chunks) for r in ok_base]),
    }
    p = {
        "ack_ms": summary([r.ack_ms for r in ok_plat if r.ack_ms is not None]),
        "started_ms": summary([r.started_ms for r in ok_plat if r.started_ms is not None]),
        "ttft_ms": summary([r.ttft_ms for r in ok_plat if r.ttft_ms is not None]),
        "last_delta_ms": summary([r.last_delta_ms for r in ok_plat if r.last_delta_ms is not None]),
        "total_ms": summary([r.total_ms for r in ok_plat if r.total_ms is not None]),
        "frames_per_reply": summary([float(r.frames) for r in ok_plat]),
        "max_frame_gap_ms": summary([r.max_frame_gap_ms for r in ok_plat if r.max_frame_gap_ms is not None]),
        "token_lag_ms": summary(lags),
        "worker_ttft_ms": summary([r.worker_ttft_ms for r in ok_plat if r.worker_ttft_ms is not None]),
        "candidate_row_to_reply_row_ms": summary([r.rows_ms for r in ok_plat if r.rows_ms is not None]),
        "worker_tokens_per_second": summary(
            [r.worker_tokens_per_second for r in ok_plat if r.worker_tokens_per_second is not None]
        ),
    }
    compare = {}
    for key in ("ttft_ms", "total_ms"):
        compare[key] = {
            "ratio_p50": ratio(p[key]["p50"], b[key]["p50"]),
            "ratio_p95": ratio(p[key]["p95"], b[key]["p95"]),
            "added_ms_p50": diff(p[key]["p50"], b[key]["p50"]),
            "added_ms_p95": diff(p[key]["p95"], b[key]["p95"]),
        }
    compare["token_lag_ms"] = {"p50": p["token_lag_ms"]["p50"], "p95": p["token_lag_ms"]["p95"]}
    return {
        **meta,
        "token_source": {
            "kind": "scripted OpenAI-compatible server (tests/fakes/scripted_llm.py): a fault injector "
            "used as a fixed-rate token source, not a model",
            "tokens_per_reply": len(tokens),
            "tokens_per_second": args.tokens_per_second,
            "chars_per_reply": len("".join(tokens)),
        },
        "baseline": {
            "replies": len(baseline),
            "ok": len(ok_base),
            "failed": [asdict(r) for r in baseline if not r.ok],
            "wall_seconds": baseline_seconds,
            **b,
        },
        "platform": {
            "replies": len(platform_records),
            "ok": len(ok_plat),
            "failed": [
                {k: v for k, v in asdict(r).items() if k != "token_arrivals_ms"}
                for r in platform_records
                if not r.ok
            ],
            "wall_seconds": platform_seconds,
            "warmup": [{k: v for k, v in asdict(r).items() if k != "token_arrivals_ms"} for r in warmups],
            "sockets_closed_by_server": [asdict(c) for c in closes],
            **p,
        },
        "platform_vs_baseline": compare,
        "raw": {
            "baseline": [asdict(r) for r in baseline],
            "platform": [asdict(r) for r in platform_records],
        },
    }


def report_text(results: dict[str, Any]) -> str:
    b, p, c = results["baseline"], results["platform"], results["platform_vs_baseline"]
    src = results["token_source"]

    def row(
        name: str,
        base: dict | None,
        plat: dict | None,
        cmp: dict | None = None,
        unit: str = " ms",
        digits: int = 0,
    ) -> str:
        cells = [
            name,
            fmt(base["p50"], unit, digits) if base else "-",
            fmt(base["p95"], unit, digits) if base else "-",
            fmt(plat["p50"], unit, digits) if plat else "-",
            fmt(plat["p95"], unit, digits) if plat else "-",
            fmt(cmp["ratio_p50"], "x", 2) if cmp else "-",
            fmt(cmp["ratio_p95"], "x", 2) if cmp else "-",
            fmt(cmp["added_ms_p50"], " ms") if cmp else "-",
            fmt(cmp["added_ms_p95"], " ms") if cmp else "-",
        ]
        return "| " + " | ".join(cells) + " |"

    warm = p["warmup"][0] if p["warmup"] else {}
    lines = [
        "## Streaming overhead, " + results["date"],
        "",
        f"- command: `{results['command']}`",
        f"- machine: {results['machine']['nproc']} CPUs ({results['machine']['platform']}), "
        f"load average {results['machine']['loadavg_start']} at start, {results['machine']['loadavg_end']} at end; "
        f"git {results['git']}",
        f"- token source: {src['kind']}; {src['tokens_per_reply']} tokens ({src['chars_per_reply']} chars) "
        f"per reply at {src['tokens_per_second']:g} tokens/s",
        f"- load: {results['replies']} replies, {results['concurrency']} concurrent streams "
        f"(platform: {results['concurrency']} sessions/sockets, {results['sessions_used']} sessions in all, "
        f"one Celery worker -P threads -c {results['worker_concurrency']}); "
        f"coalescing {results['coalesce_seconds'] * 1000:g} ms",
        f"- replies ok: baseline {b['ok']}/{b['replies']}, platform {p['ok']}/{p['replies']}; "
        f"wall time baseline {b['wall_seconds']:.1f} s, platform {p['wall_seconds']:.1f} s",
        f"- warm-up (first reply after start, not counted): ack {fmt(warm.get('ack_ms'), ' ms')}, "
        f"first delta {fmt(warm.get('ttft_ms'), ' ms')}, total {fmt(warm.get('total_ms'), ' ms')}; "
        f"sockets closed by the server meanwhile: "
        f"{sum(c['during'] == 'warm-up' for c in p['sockets_closed_by_server'])}",
        "",
        "| figure | baseline p50 | baseline p95 | platform p50 | platform p95 | ratio p50 | ratio p95 "
        "| added p50 | added p95 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        row("time to first token (send -> first delta)", b["ttft_ms"], p["ttft_ms"], c["ttft_ms"]),
        row("total per reply (send -> turn.completed)", b["total_ms"], p["total_ms"], c["total_ms"]),
        row("ack (send -> turn.ack)", None, p["ack_ms"]),
        row("send -> turn.started", None, p["started_ms"]),
        row("send -> last delta", None, p["last_delta_ms"]),
        row(
            "frames per reply (baseline: SSE chunks)",
            b["chunks_per_reply"],
            p["frames_per_reply"],
            unit="",
            digits=1,
        ),
        row("largest gap between two deltas", None, p["max_frame_gap_ms"]),
        row("candidate row -> reply row (database clock)", None, p["candidate_row_to_reply_row_ms"]),
        row("worker's own TTFT (saved on the turn)", None, p["worker_ttft_ms"]),
        "",
        f"Added latency per token (platform arrival minus the baseline's median arrival of the same token, "
        f"over {p['token_lag_ms']['n']} tokens): p50 {fmt(c['token_lag_ms']['p50'], ' ms')}, "
        f"p95 {fmt(c['token_lag_ms']['p95'], ' ms')}.",
    ]
    closes = p["sockets_closed_by_server"]
    if closes:
        idle = [c["seconds_since_last_frame"] for c in closes if c["seconds_since_last_frame"]]
        lines += [
            "",
            f"The server closed {len(closes)} socket(s) the client had not closed (the browser reconnects; "
            f"frames sent meanwhile are lost): "
            + ", ".join(f"{c['during']} after {c['seconds_open']:.1f} s open" for c in closes[:6])
            + ("" if len(closes) <= 6 else ", ...")
            + (f"; {max(idle):.1f} s at most since the socket's last frame" if idle else "")
            + ". Reason given: "
            + closes[0]["reason"]
            + " (see the Daphne log: var/log/bench-web.log).",
        ]
    if p["failed"] or b["failed"]:
        lines += ["", "Failed replies:"]
        lines += [f"- baseline slot {r['slot']}: {r['error']}" for r in b["failed"]]
        lines += [
            f"- platform session {r['session_id']} turn {r['turn_id']}: {r['error']}" for r in p["failed"]
        ]
    else:
        lines += [
            "",
            "Integrity: every platform reply had its ack, turn.started, deltas in sequence with contiguous "
            "offsets, and streamed text equal to the final turn and to the scripted tokens.",
        ]
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], text: str, stamp: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"streaming-{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    if not RESULTS_MD.exists():
        RESULTS_MD.write_text(RESULTS_MD_HEADER)
    with RESULTS_MD.open("a") as out:
        out.write("\n" + text)
        out.write(f"\nJSON: `bench/results/{path.name}`\n")
    return path


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=40, help="replies measured per path (default 40)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent streams/sessions (default 4)")
    parser.add_argument(
        "--tokens-per-second", type=float, default=40.0, help="scripted token rate (default 40)"
    )
    parser.add_argument("--tokens", type=int, default=60, help="tokens per reply (default 60)")
    parser.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help=f"Redis for the bench (default {DEFAULT_REDIS_URL})"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print only; write no JSON and no RESULTS.md entry"
    )
    args = parser.parse_args(argv)
    if args.replies < 1 or args.concurrency < 1 or args.tokens < 1 or args.tokens_per_second <= 0:
        parser.error("--replies, --concurrency, --tokens and --tokens-per-second must be positive")
    args.concurrency = min(args.concurrency, args.replies)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        print(
            "DATABASE_URL is not set: run this under `python -m interview_platform.devstack run`",
            file=sys.stderr,
        )
        return 2
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y-%m-%dT%H%M%SZ")
    words = REPLY_TEXT.split()
    tokens = [(" " if i else "") + words[i % len(words)] for i in range(args.tokens)]
    meta = {
        "benchmark": "streaming",
        "date": now.isoformat(timespec="seconds"),
        "command": invoked_command(),
        "git": git_revision(),
        "machine": {
            "nproc": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        },
        "replies": args.replies,
        "concurrency": args.concurrency,
        "worker_concurrency": WORKER_CONCURRENCY,
    }
    script = Script(tokens=tokens, seconds_per_token=1.0 / args.tokens_per_second)
    with ScriptedLLM(script) as scripted, devstack.running_stack(dict(os.environ)) as stack:

        def interrupted(_signum: int, _frame: object) -> None:
            # `devstack run` kills this process 0.25 s after its own Ctrl-C: signal the children first.
            for child in list(stack.children.values()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.process.pid, signal.SIGTERM)
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, interrupted)
        print(
            f"[bench] scripted token source (a fault injector, not a model) at {scripted.base_url}",
            flush=True,
        )
        os.environ.update(
            {
                "DATABASE_URL": ensure_database(os.environ["DATABASE_URL"], BENCH_DATABASE),
                "REDIS_URL": args.redis_url,
                "CHANNEL_REDIS_URL": args.redis_url,
                "CACHE_REDIS_URL": args.redis_url,
                "CELERY_BROKER_URL": args.redis_url,
                "CHANNEL_PREFIX": CHANNEL_PREFIX,
                "CACHE_PREFIX": CACHE_PREFIX,
                "LLM_BASE_URL": scripted.base_url,
                "LLM_MODEL": "scripted-token-source",
                "DJANGO_SETTINGS_MODULE": "interview_platform.settings",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if not devstack.redis_answers(args.redis_url):
            print(f"[bench] no Redis at {args.redis_url}", file=sys.stderr)
            return 2
        import django

        django.setup()
        for name in ("httpx", "httpx2"):  # one INFO line per request would bury the report
            logging.getLogger(name).setLevel(logging.WARNING)
        from django.conf import settings

        per_session = max(1, settings.INTERVIEW_MESSAGES_PER_MINUTE - 1)
        needed = sessions_needed(args.replies, args.concurrency, per_session)
        print(f"[bench] migrating database {BENCH_DATABASE!r} and creating {needed} sessions", flush=True)
        cookie, session_ids = prepare_data(needed)
        plan = session_plan(args.replies, args.concurrency, per_session, session_ids)

        print(f"[bench] baseline: {args.replies} replies straight from the scripted server", flush=True)
        baseline, baseline_seconds = asyncio.run(run_baseline(args.replies, args.concurrency, tokens))

        port = free_port()
        stack.env = dict(os.environ)
        stack.start("bench-worker", devstack.celery_worker_command("interviewer", WORKER_CONCURRENCY))
        stack.start("bench-web", devstack.daphne_command(port))

        def daphne_answers() -> bool:
            stack.check_alive()
            return devstack.http_answers(f"http://127.0.0.1:{port}/healthz")

        devstack.wait_until(daphne_answers, timeout=120, what="daphne")
        print(
            f"[bench] platform: Daphne on port {port}, worker on queue interviewer; logs in {devstack.LOG_DIR}",
            flush=True,
        )
        limit_s = 30 + 3 * args.tokens / args.tokens_per_second
        records, warmups, closes, platform_seconds = asyncio.run(
            run_platform(port=port, cookie=cookie, plan=plan, tokens=tokens, limit_s=limit_s, stack=stack)
        )
        worker_figures(records + warmups)
        meta["machine"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        meta["sessions_used"] = len(session_ids)
        meta["coalesce_seconds"] = settings.INTERVIEW_COALESCE_SECONDS
        meta["messages_per_minute_limit"] = settings.INTERVIEW_MESSAGES_PER_MINUTE
        results = build_results(
            args, meta, baseline, baseline_seconds, records, warmups, closes, platform_seconds, tokens
        )
        text = report_text(results)
        print()
        print(text)
        if not args.no_write:
            path = write_results(results, text, stamp)
            print(f"[bench] wrote {path.relative_to(ROOT)} and appended to {RESULTS_MD.relative_to(ROOT)}")
        print("[bench] stopping Daphne, the worker and the scripted server", flush=True)
    failed = results["baseline"]["failed"] or results["platform"]["failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
