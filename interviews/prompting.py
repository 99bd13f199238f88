"""The interviewer's prompt, from versioned files under prompts/interviewer/<version>/.

Layout, chosen so vLLM's prefix cache serves most of every request: the system message depends only
on the session (question, plan, rubric), so it is byte-identical on every turn; the conversation
follows and only grows at its end; the per-turn notes (phase, time left, rubric points not yet
covered) are appended to the last candidate message, where changing them invalidates nothing
before it. They are not a second system message: many chat templates (Mistral's, for one) reject
a system message after the first, or roles that do not alternate, so consecutive messages of one
role are merged too.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection

from interview_platform.llm import estimate_tokens
from interviews.models import InterviewSession, Turn
from interviews.selectors import session_phase

PROMPT_VERSION = "interviewer-v1"
PROMPT_DIR = Path(settings.BASE_DIR) / "prompts" / "interviewer" / "v1"
UNCOVERED_SIMILARITY = 0.45
UNCOVERED_LIMIT = 2


@functools.cache
def _template(name: str) -> str:
    return (PROMPT_DIR / name).read_text()


def _phase_line(phase: dict) -> str:  # type: ignore[type-arg]
    return f"- {phase['title']} ({phase['minutes']} min): {phase.get('goal', '')}"


def opening_message(*, session: InterviewSession) -> str:
    question = session.question
    return (
        _template("opening.txt")
        .format(
            duration=sum(phase["minutes"] for phase in session.phase_plan),
            title=question.title,
            prompt=question.prompt.strip(),
            phases=", ".join(phase["title"].lower() for phase in session.phase_plan),
        )
        .strip()
    )


def system_message(*, session: InterviewSession) -> str:
    from grading.selectors import criteria_for_session

    question = session.question
    rubric = "\n".join(f"- {c.title}: {c.description}" for c in criteria_for_session(session=session))
    return (
        _template("system.txt")
        .format(
            title=question.title,
            prompt=question.prompt.strip(),
            duration=sum(phase["minutes"] for phase in session.phase_plan),
            phase_plan="\n".join(_phase_line(phase) for phase in session.phase_plan),
            focus=question.interviewer_focus.strip(),
            rubric=rubric,
        )
        .strip()
    )


def uncovered_criteria(*, session: InterviewSession, latest_turn: Turn) -> list[str]:
    """Rubric items the candidate has not covered yet, nearest to what they just said first.

    Coverage of a criterion is its best cosine similarity to any candidate turn so far (pgvector).
    """
    if latest_turn.embedding is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.title, c.description
            FROM grading_criterion c
            WHERE c.question_id = %s AND c.rubric_version = %s AND c.embedding IS NOT NULL
              AND COALESCE((
                    SELECT max(1 - (t.embedding <=> c.embedding))
                    FROM interviews_turn t
                    WHERE t.session_id = %s AND t.role = 'candidate' AND t.embedding IS NOT NULL
                  ), 0) < %s
            ORDER BY c.embedding <=> %s::vector
            LIMIT %s
            """,
            [
                session.question_id,
                session.rubric_version,
                session.pk,
                UNCOVERED_SIMILARITY,
                str(list(latest_turn.embedding)),
                UNCOVERED_LIMIT,
            ],
        )
        return [f"- {title}: {description}" for title, description in cursor.fetchall()]


def notes_message(*, session: InterviewSession, latest_turn: Turn, now: datetime) -> str:
    phase = session_phase(session=session, at=now)
    phase_left = max(0.0, (phase.ends_at - now).total_seconds() / 60)
    total_left = max(0.0, (session.deadline_at - now).total_seconds() / 60)
    moving_on = ""
    if phase_left < 1 and phase.index + 1 < len(session.phase_plan):
        next_phase = session.phase_plan[phase.index + 1]
        moving_on = f' Time to move on: steer the candidate to "{next_phase["title"]}".'
    uncovered = uncovered_criteria(session=session, latest_turn=latest_turn)
    return (
        _template("notes.txt")
        .format(
            phase_title=phase.title,
            phase_goal=phase.goal.rstrip("."),
            phase_minutes_left=f"{phase_left:.0f}",
            total_minutes_left=f"{total_left:.0f}",
            moving_on=moving_on,
            uncovered="\n".join(uncovered) or "- (none: ask the candidate to go deeper on their design)",
        )
        .strip()
    )


def build_messages(*, session: InterviewSession, reply: Turn, now: datetime) -> list[dict[str, str]]:
    """The chat messages for the reply `reply` (a streaming interviewer turn)."""
    system = system_message(session=session)
    history = list(
        session.turns.filter(seq__lt=reply.seq)
        .exclude(content="")
        .order_by("seq")
        .only("seq", "role", "content", "embedding")
    )
    latest_candidate = next((t for t in reversed(history) if t.role == Turn.Role.CANDIDATE), None)
    notes = (
        notes_message(session=session, latest_turn=latest_candidate, now=now)
        if latest_candidate is not None
        else ""
    )
    conversation = [
        {"role": "assistant" if turn.role == Turn.Role.INTERVIEWER else "user", "content": turn.content}
        for turn in history
    ]
    if history and history[0].seq == 1 and history[0].role == Turn.Role.INTERVIEWER:
        # The opening restates the problem the system message already holds; given in full, a
        # small model copies it back as its reply. Its last paragraph (the first question) is kept.
        conversation[0]["content"] = history[0].content.strip().rsplit("\n\n", 1)[-1]
    budget = (
        settings.LLM_CONTEXT_TOKENS
        - settings.LLM_REPLY_MAX_TOKENS
        - estimate_tokens(system)
        - estimate_tokens(notes)
        - 64  # chat-template overhead per message, roughly
    )
    conversation = merge_same_role(trim_history(conversation, budget_tokens=budget))
    if notes and conversation and conversation[-1]["role"] == "user":
        last = conversation[-1]
        conversation[-1] = {"role": "user", "content": f"{last['content']}\n\n---\n{notes}"}
    return [{"role": "system", "content": system}, *conversation]


def merge_same_role(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    merged: list[dict[str, str]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1] = {
                "role": message["role"],
                "content": f"{merged[-1]['content']}\n\n{message['content']}",
            }
        else:
            merged.append(dict(message))
    return merged


def trim_history(messages: list[dict[str, str]], *, budget_tokens: int) -> list[dict[str, str]]:
    """Drops the oldest exchanges (keeping the opening, which states the problem) until it fits.

    The context window is finite and vLLM answers a request over it with a 400; trimming before
    sending keeps the interview going.
    """
    per_message_overhead = 8
    cost = [estimate_tokens(m["content"]) + per_message_overhead for m in messages]
    if sum(cost) <= budget_tokens:
        return messages
    head, head_cost = messages[:1], cost[:1]
    tail, tail_cost = messages[1:], cost[1:]
    while tail and sum(head_cost) + sum(tail_cost) > budget_tokens:
        tail, tail_cost = tail[1:], tail_cost[1:]
    if sum(head_cost) + sum(tail_cost) > budget_tokens:
        head = []  # even the opening does not fit beside the newest message
    return head + tail
