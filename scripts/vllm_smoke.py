#!/usr/bin/env python3
"""Manual smoke check of an OpenAI-compatible chat server (the local vLLM interviewer model).

Standard library only, so any python runs it:

    python scripts/vllm_smoke.py --base-url http://127.0.0.1:8801/v1 --model smollm2-135m-instruct

(a) a streaming chat completion with ``stream_options: {include_usage: true}``: prints the time to
    first token, tokens/s and the usage;
(b) a chat completion with ``response_format`` json_schema (a grade: critique, score 1-4, evidence
    quotes from a fixed list) and validates the JSON it returns.

Exits 1 when a check fails, 2 when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

QUOTES = [
    "I would start by clarifying the requirements.",
    "We could shard the table by customer id.",
    "I am not sure how to measure that.",
]

# maxLength / maxItems bound the output: under greedy decoding the tiny model can loop inside a
# string ("2.1.1.1.1...") until max_tokens, and the grammar lets it pad with whitespace after that.
GRADE_SCHEMA = {
    "type": "object",
    "properties": {
        "critique": {"type": "string", "maxLength": 300},
        "score": {"type": "integer", "enum": [1, 2, 3, 4]},
        "evidence": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "turn": {"type": "integer"},
                    "quote": {"type": "string", "enum": QUOTES},
                },
                "required": ["turn", "quote"],
                "additionalProperties": False,
            },
            "maxItems": 3,
        },
    },
    "required": ["critique", "score", "evidence"],
    "additionalProperties": False,
}


def post(url: str, payload: dict, api_key: str, timeout: float):
    req = urllib.request.Request(  # noqa: S310
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
        method="POST",
    )
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (http URL from the CLI)


def check_stream(base: str, model: str, api_key: str, max_tokens: int, timeout: float) -> list[str]:
    print("== (a) streaming chat completion")
    payload = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a technical interviewer. Be brief."},
            {"role": "user", "content": "Ask me one question about database indexing."},
        ],
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    t0 = time.monotonic()
    ttft = None
    pieces: list[str] = []
    usage = None
    finish = None
    chunks = 0
    with post(f"{base}/chat/completions", payload, api_key, timeout) as resp:
        for raw in resp:
            line = raw.decode("utf-8").strip()
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            chunks += 1
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    if ttft is None:
                        ttft = time.monotonic() - t0
                    pieces.append(content)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
    total = time.monotonic() - t0
    text = "".join(pieces)
    errors = []
    print(f"text: {text!r}")
    print(f"chunks={chunks} finish_reason={finish} usage={usage}")
    if not text:
        errors.append("stream: no content")
    if usage is None:
        errors.append("stream: no usage chunk (stream_options.include_usage)")
    if ttft is not None:
        completion = (usage or {}).get("completion_tokens") or len(pieces)
        gen_time = total - ttft
        rate = (completion - 1) / gen_time if gen_time > 0 and completion > 1 else float("nan")
        print(
            f"TTFT {ttft * 1000:.0f} ms; total {total:.2f} s; {completion} tokens; "
            f"{rate:.1f} tokens/s after the first ({completion / total:.1f} tokens/s overall)"
        )
    return errors


def validate_grade(obj) -> list[str]:
    """A small validator for GRADE_SCHEMA (no jsonschema package needed)."""
    errs = []
    if not isinstance(obj, dict):
        return [f"not an object: {type(obj).__name__}"]
    extra = set(obj) - {"critique", "score", "evidence"}
    if extra:
        errs.append(f"extra keys {sorted(extra)}")
    critique = obj.get("critique")
    if not isinstance(critique, str):
        errs.append("critique is not a string")
    elif len(critique) > 300:
        errs.append(f"critique longer than 300 characters ({len(critique)})")
    score = obj.get("score")
    if not (isinstance(score, int) and not isinstance(score, bool) and score in (1, 2, 3, 4)):
        errs.append(f"score {score!r} not in [1, 2, 3, 4]")
    evidence = obj.get("evidence")
    if not isinstance(evidence, list):
        errs.append("evidence is not an array")
    else:
        if len(evidence) > 3:
            errs.append(f"evidence has {len(evidence)} items, more than 3")
        for i, item in enumerate(evidence):
            if not isinstance(item, dict):
                errs.append(f"evidence[{i}] is not an object")
                continue
            if set(item) - {"turn", "quote"}:
                errs.append(f"evidence[{i}] extra keys {sorted(set(item) - {'turn', 'quote'})}")
            turn = item.get("turn")
            if not (isinstance(turn, int) and not isinstance(turn, bool)):
                errs.append(f"evidence[{i}].turn {turn!r} is not an integer")
            if item.get("quote") not in QUOTES:
                errs.append(f"evidence[{i}].quote {item.get('quote')!r} is not a given quote")
    return errs


def check_json_schema(base: str, model: str, api_key: str, max_tokens: int, timeout: float) -> list[str]:
    print("== (b) chat completion with response_format json_schema")
    transcript = "\n".join(f"turn {i + 1} (candidate): {q}" for i, q in enumerate(QUOTES))
    payload = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You grade interview answers. Reply with JSON only."},
            {
                "role": "user",
                "content": (
                    "Grade the candidate on a 1-4 scale, with a one-sentence critique and evidence "
                    f"quoted from the transcript.\n\n{transcript}"
                ),
            },
        ],
        "max_tokens": max_tokens,
        "temperature": 0,
        "frequency_penalty": 1.0,  # against the weak model's repetition loops
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "grade", "schema": GRADE_SCHEMA, "strict": True},
        },
    }
    t0 = time.monotonic()
    with post(f"{base}/chat/completions", payload, api_key, timeout) as resp:
        body = json.loads(resp.read())
    elapsed = time.monotonic() - t0
    choice = body["choices"][0]
    content = choice["message"].get("content") or ""
    print(f"content: {content}")
    print(f"finish_reason={choice.get('finish_reason')} usage={body.get('usage')} in {elapsed:.2f} s")
    try:
        obj = json.loads(content)
    except json.JSONDecodeError as exc:
        return [f"json_schema: not valid JSON ({exc})"]
    errs = validate_grade(obj)
    if errs:
        return [f"json_schema: {e}" for e in errs]
    print("JSON valid against the grade schema")
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Smoke-check an OpenAI-compatible chat server.")
    parser.add_argument(
        "--base-url",
        default="http://127.0.0.1:8801/v1",
        help="API base URL, with /v1 (default: %(default)s)",
    )
    parser.add_argument("--model", default="smollm2-135m-instruct", help="served model name")
    parser.add_argument("--api-key", default="EMPTY")
    parser.add_argument("--max-tokens", type=int, default=100, help="for the streaming check")
    parser.add_argument("--json-max-tokens", type=int, default=400, help="for the json_schema check")
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    args = parser.parse_args(argv)
    base = args.base_url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"

    try:
        with urllib.request.urlopen(f"{base}/models", timeout=10) as resp:  # noqa: S310
            models = [m["id"] for m in json.loads(resp.read())["data"]]
    except (urllib.error.URLError, OSError) as exc:
        print(f"FAIL: cannot reach {base}/models: {exc}", file=sys.stderr)
        return 2
    print(f"models: {models}")
    errors = [] if args.model in models else [f"model {args.model!r} not served"]

    for check, max_tokens in (
        (check_stream, args.max_tokens),
        (check_json_schema, args.json_max_tokens),
    ):
        try:
            errors += check(base, args.model, args.api_key, max_tokens, args.timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            errors.append(f"{check.__name__}: HTTP {exc.code}: {detail}")
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            errors.append(f"{check.__name__}: {type(exc).__name__}: {exc}")

    if errors:
        for e in errors:
            print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
