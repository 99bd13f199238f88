"""Live state of a streaming reply, kept in Redis beside the channel layer.

The streaming task writes the whole reply-so-far here *before* it sends each delta, and the
consumer reads it *after* joining the group; so a browser that (re)connects mid-reply gets every
character either from this snapshot or from a later delta (overlaps are deduped by offset), and
never sees a gap. PostgreSQL gets the partial text every second and the final text at the end.

The cancel flag is how anything (a newer candidate message, the end of the session) stops a reply:
the task checks it for every chunk, then closes the HTTP stream so vLLM aborts the request.
"""

from __future__ import annotations

import functools

import redis
import redis.asyncio as aioredis
from django.conf import settings

PARTIAL_TTL_SECONDS = 900
CANCEL_TTL_SECONDS = 900


def partial_key(turn_id: int) -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:turn:{turn_id}:partial"


def cancel_key(turn_id: int) -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:turn:{turn_id}:cancel"


@functools.cache
def _sync_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def async_client() -> aioredis.Redis:
    """One per event loop: the caller closes it (`await client.aclose()`)."""
    return aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def partial_text(turn_id: int) -> str | None:
    return _sync_client().get(partial_key(turn_id))


def request_cancel(turn_ids: list[int]) -> None:
    if not turn_ids:
        return
    client = _sync_client()
    with client.pipeline() as pipe:
        for turn_id in turn_ids:
            pipe.set(cancel_key(turn_id), "1", ex=CANCEL_TTL_SECONDS)
        pipe.execute()


async def set_partial(client: aioredis.Redis, turn_id: int, text: str) -> None:
    await client.set(partial_key(turn_id), text, ex=PARTIAL_TTL_SECONDS)


async def clear_partial(client: aioredis.Redis, turn_id: int) -> None:
    await client.delete(partial_key(turn_id))


async def cancel_requested(client: aioredis.Redis, turn_id: int) -> bool:
    return bool(await client.exists(cancel_key(turn_id)))
