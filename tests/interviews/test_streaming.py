"""The streaming path: model -> coalesced deltas with sequence numbers -> channel layer -> database.

One test runs against the real vLLM server; the fault cases use the scripted server (a fault
injector) because a real model cannot be told to fail on cue.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.utils import timezone

from interview_platform import realtime
from interviews import live, prompting, services, streaming
from interviews.models import Turn
from tests.factories import CriterionFactory, InterviewSessionFactory, add_turn
from tests.fakes.scripted_llm import Script, ScriptedLLM

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

END_TYPES = {realtime.TURN_COMPLETED, realtime.TURN_FAILED}


async def run_and_collect(turn: Turn, messages: list[dict[str, str]]) -> tuple[Turn, list[dict]]:
    """Runs one reply while a listener on the session's group records every frame, in arrival order."""
    layer = channel_layers.make_backend("default")
    channel = await layer.new_channel()
    await layer.group_add(realtime.session_group(turn.session_id), channel)
    frames: list[dict] = []

    async def listen() -> None:
        while True:
            message = await asyncio.wait_for(layer.receive(channel), timeout=120)
            frames.append(message["frame"])
            if message["frame"]["type"] in END_TYPES:
                return

    listener = asyncio.create_task(listen())
    finished = await streaming.stream_reply(turn=turn, messages=messages)
    await listener
    await layer.close_pools()
    return finished, frames


def text_from_deltas(frames: list[dict]) -> str:
    deltas = sorted((f for f in frames if f["type"] == realtime.TURN_DELTA), key=lambda f: f["seq"])
    text = ""
    for delta in deltas:
        assert delta["offset"] == len(text), "deltas are contiguous: no gap, no overlap"
        text += delta["text"]
    return text


@pytest.fixture
def reply_turn():
    session = InterviewSessionFactory()
    CriterionFactory(question=session.question)
    add_turn(session, Turn.Role.INTERVIEWER, "Welcome. What would you like to clarify?")
    candidate = add_turn(session, Turn.Role.CANDIDATE, "I'd start with the limits: per user or per API key?")
    return services.interviewer_turn_begin(candidate_turn_id=candidate.pk)


@pytest.mark.llm
async def test_a_reply_from_vllm_streams_in_order_and_is_saved_with_its_timings(llm_base_url, reply_turn):
    messages = await database_sync_to_async(prompting.build_messages)(
        session=reply_turn.session, reply=reply_turn, now=timezone.now()
    )
    finished, frames = await run_and_collect(reply_turn, messages)
    assert frames[0]["type"] == realtime.TURN_STARTED
    assert frames[-1]["type"] == realtime.TURN_COMPLETED
    assert [f["seq"] for f in frames if f["type"] == realtime.TURN_DELTA] == list(
        range(1, sum(f["type"] == realtime.TURN_DELTA for f in frames) + 1)
    )
    streamed = text_from_deltas(frames)
    assert finished.status == Turn.Status.COMPLETE
    assert finished.content == streamed.strip() and finished.content
    assert frames[-1]["turn"]["content"] == finished.content
    assert finished.completion_tokens and finished.prompt_tokens
    assert finished.ttft_ms is not None and finished.ttft_ms > 0
    assert finished.tokens_per_second is None or finished.tokens_per_second > 0
    assert finished.model_name and finished.prompt_version == prompting.PROMPT_VERSION
    assert await database_sync_to_async(live.partial_text)(finished.pk) is None


async def test_deltas_are_coalesced_not_sent_per_token(settings, reply_turn):
    settings.INTERVIEW_COALESCE_SECONDS = 0.05
    script = Script(tokens=[f"t{i} " for i in range(60)], seconds_per_token=0.005)
    with ScriptedLLM(script) as server:
        settings.LLM_BASE_URL = server.base_url
        finished, frames = await run_and_collect(reply_turn, [{"role": "user", "content": "hi"}])
    deltas = [f for f in frames if f["type"] == realtime.TURN_DELTA]
    assert text_from_deltas(frames).strip() == finished.content == "".join(script.tokens).strip()
    # 60 tokens over ~0.3 s in 50 ms windows: a handful of frames, not 60.
    assert 2 <= len(deltas) <= 15


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(streaming, "MODEL_RETRY_PAUSES", (0.01, 0.01, 0.01))


async def test_a_model_error_fails_the_turn_with_a_clear_message(settings, reply_turn, quick_retries):
    with ScriptedLLM(Script(http_status=500)) as server:
        settings.LLM_BASE_URL = server.base_url
        finished, frames = await run_and_collect(reply_turn, [{"role": "user", "content": "hi"}])
    assert len(server.script.requests) == 3, "retried before giving up"
    assert finished.status == Turn.Status.FAILED and "500" in finished.error
    assert frames[-1]["type"] == realtime.TURN_FAILED
    assert frames[-1]["message"] == streaming.MODEL_FAILED_MESSAGE


async def test_a_model_server_that_recovers_before_any_text_is_retried(settings, reply_turn, quick_retries):
    with ScriptedLLM(Script(http_status=503, failing_requests=2)) as server:
        settings.LLM_BASE_URL = server.base_url
        finished, frames = await run_and_collect(reply_turn, [{"role": "user", "content": "hi"}])
    assert len(server.script.requests) == 3
    assert finished.status == Turn.Status.COMPLETE
    assert text_from_deltas(frames).strip() == finished.content == "".join(Script().tokens).strip()


async def test_an_empty_reply_is_asked_for_again(settings, reply_turn):
    with ScriptedLLM(Script(tokens=["  "])) as server:
        settings.LLM_BASE_URL = server.base_url
        finished, _ = await run_and_collect(reply_turn, [{"role": "user", "content": "hi"}])
    assert len(server.script.requests) == streaming.EMPTY_REPLY_ATTEMPTS
    assert finished.status == Turn.Status.FAILED and finished.error == "The model returned an empty reply."


async def test_a_stream_dropped_midway_keeps_the_text_received_so_far(settings, reply_turn):
    with ScriptedLLM(Script(drop_after_tokens=5)) as server:
        settings.LLM_BASE_URL = server.base_url
        finished, frames = await run_and_collect(reply_turn, [{"role": "user", "content": "hi"}])
    assert finished.status == Turn.Status.FAILED
    assert finished.content == "word0 word1 word2 word3 word4"
    assert text_from_deltas(frames).strip() == finished.content


async def test_cancelling_stops_the_reply_and_hangs_up_on_the_model_server(settings, reply_turn):
    script = Script(tokens=[f"w{i} " for i in range(400)], seconds_per_token=0.02)
    with ScriptedLLM(script) as server:
        settings.LLM_BASE_URL = server.base_url

        async def cancel_soon() -> None:
            await asyncio.sleep(0.5)
            await database_sync_to_async(live.request_cancel)([reply_turn.pk])

        canceller = asyncio.create_task(cancel_soon())
        finished, _ = await run_and_collect(reply_turn, [{"role": "user", "content": "hi"}])
        await canceller
        deadline = time.monotonic() + 5
        while script.client_disconnects == 0 and time.monotonic() < deadline:  # noqa: ASYNC110 (another thread's counter)
            await asyncio.sleep(0.05)
    assert finished.status == Turn.Status.CANCELLED
    assert 0 < len(finished.content.split()) < 400
    assert script.client_disconnects == 1, "the HTTP stream was closed, so vLLM would abort the request"


async def test_the_partial_reply_is_saved_to_the_database_while_it_streams(settings, reply_turn):
    settings.INTERVIEW_PARTIAL_SAVE_SECONDS = 0.2
    script = Script(tokens=[f"w{i} " for i in range(40)], seconds_per_token=0.025)
    seen_in_db: list[str] = []
    with ScriptedLLM(script) as server:
        settings.LLM_BASE_URL = server.base_url

        async def watch() -> None:
            for _ in range(20):
                await asyncio.sleep(0.05)
                turn = await database_sync_to_async(Turn.objects.get)(pk=reply_turn.pk)
                if turn.status == Turn.Status.STREAMING and turn.content:
                    seen_in_db.append(turn.content)

        watcher = asyncio.create_task(watch())
        finished, _ = await run_and_collect(reply_turn, [{"role": "user", "content": "hi"}])
        await watcher
    assert seen_in_db, "a partial save happened before the end"
    assert all(finished.content.startswith(partial.strip()) for partial in seen_in_db)
