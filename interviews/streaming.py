"""One interviewer reply, streamed from the model to every browser watching the session.

The whole stream runs in one asyncio loop: the OpenAI client, the Redis writes and every
group_send share it (one `async_to_sync` per token would leak loops and connections). Deltas are
coalesced for INTERVIEW_COALESCE_SECONDS so the channel layer carries ~25 frames/s, not one per
token, and each frame has a per-turn sequence number and the offset of its first character.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.conf import settings

from interview_platform import llm, realtime
from interviews import live, services
from interviews.models import Turn
from interviews.selectors import turn_as_frame

logger = logging.getLogger(__name__)

MODEL_FAILED_MESSAGE = "The interviewer model did not answer. Send your message again to retry."
EMPTY_REPLY_ATTEMPTS = 2
# Pauses between attempts when the model server cannot be reached before any text was sent.
MODEL_RETRY_PAUSES = (1.0, 2.0, 4.0, 8.0)


@dataclass
class _Outbox:
    """Text generated so far and what of it has been sent."""

    text: str = ""
    sent: int = 0
    frames: int = 0
    last_flush: float = field(default_factory=time.monotonic)
    last_save: float = field(default_factory=time.monotonic)


async def stream_reply(*, turn: Turn, messages: list[dict[str, str]]) -> Turn:
    layer = channel_layers.make_backend("default")
    redis = live.async_client()
    group = realtime.session_group(turn.session_id)
    outbox = _Outbox()
    stats = llm.StreamStats()
    status, error = Turn.Status.COMPLETE, ""

    async def flush() -> None:
        if outbox.sent == len(outbox.text):
            return
        # Redis first, then the frame: a browser joining in between reads the snapshot.
        await live.set_partial(redis, turn.pk, outbox.text)
        outbox.frames += 1
        await realtime.send_frame(
            layer,
            group,
            {
                "type": realtime.TURN_DELTA,
                "turn_id": turn.pk,
                "seq": outbox.frames,
                "offset": outbox.sent,
                "text": outbox.text[outbox.sent :],
            },
        )
        outbox.sent = len(outbox.text)
        outbox.last_flush = time.monotonic()

    try:
        await live.set_partial(redis, turn.pk, "")
        await realtime.send_frame(layer, group, {"type": realtime.TURN_STARTED, "turn": turn_as_frame(turn)})
        client = llm.async_client()

        async def stream_once() -> llm.StreamStats:
            attempt_stats = llm.StreamStats()
            async for delta in llm.stream_chat(
                client, messages, max_tokens=settings.LLM_REPLY_MAX_TOKENS, stats=attempt_stats
            ):
                if await live.cancel_requested(redis, turn.pk):
                    nonlocal status
                    status = Turn.Status.CANCELLED
                    break  # leaving the iteration closes the HTTP stream: vLLM aborts the request
                outbox.text += delta
                now = time.monotonic()
                if now - outbox.last_flush >= settings.INTERVIEW_COALESCE_SECONDS:
                    await flush()
                if now - outbox.last_save >= settings.INTERVIEW_PARTIAL_SAVE_SECONDS:
                    outbox.last_save = now
                    await database_sync_to_async(services.interviewer_turn_save_partial)(
                        turn_id=turn.pk, content=outbox.text
                    )
            return attempt_stats

        try:
            for attempt, pause in enumerate(MODEL_RETRY_PAUSES, start=1):
                try:
                    stats = await stream_once()
                except llm.LLMError as exc:
                    # Only while nothing was sent: a retry then cannot duplicate text. This rides
                    # out a model server that is (re)starting.
                    if outbox.text or attempt == len(MODEL_RETRY_PAUSES):
                        raise
                    logger.info("interviewer turn %s: %s; retrying in %s s", turn.pk, exc, pause)
                    await asyncio.sleep(pause)
                    continue
                # A small model sometimes ends at once with only whitespace: ask once more.
                if outbox.text.strip() or status == Turn.Status.CANCELLED or attempt >= EMPTY_REPLY_ATTEMPTS:
                    break
        except llm.LLMError as exc:
            logger.warning("interviewer turn %s failed: %s", turn.pk, exc)
            status, error = Turn.Status.FAILED, str(exc)
        finally:
            await client.close()
        await flush()
        text = outbox.text.strip()
        if status == Turn.Status.COMPLETE and not text:
            status, error = Turn.Status.FAILED, "The model returned an empty reply."
        finished = await database_sync_to_async(services.interviewer_turn_finish)(
            turn_id=turn.pk,
            content=text,
            status=status,
            error=error,
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            ttft_ms=stats.ttft_ms,
            tokens_per_second=stats.tokens_per_second,
        )
        frame_type = realtime.TURN_FAILED if status == Turn.Status.FAILED else realtime.TURN_COMPLETED
        frame = {"type": frame_type, "turn": turn_as_frame(finished)}
        if status == Turn.Status.FAILED:
            frame["message"] = MODEL_FAILED_MESSAGE
        await realtime.send_frame(layer, group, frame)
        await live.clear_partial(redis, turn.pk)
        return finished
    finally:
        await redis.aclose()
        await layer.close_pools()
