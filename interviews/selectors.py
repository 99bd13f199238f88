from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from interviews import live
from interviews.models import InterviewSession, Question, Turn


def question_list_published() -> QuerySet[Question]:
    return Question.objects.filter(status=Question.Status.PUBLISHED)


def session_list_for_candidate(*, user: AbstractBaseUser) -> QuerySet[InterviewSession]:
    return InterviewSession.objects.filter(candidate=user).select_related("question", "report")


def session_can_view(*, user: AbstractBaseUser | AnonymousUser, session: InterviewSession) -> bool:
    """Its candidate, or staff (observers). Used by every view and WebSocket that shows a session."""
    if not user.is_authenticated:
        return False
    return session.candidate_id == user.pk or bool(user.is_staff)


def session_can_speak(*, user: AbstractBaseUser | AnonymousUser, session: InterviewSession) -> bool:
    return user.is_authenticated and session.candidate_id == user.pk


@dataclass(frozen=True)
class PhaseState:
    index: int
    key: str
    title: str
    goal: str
    started_at: datetime
    ends_at: datetime


def session_phase(*, session: InterviewSession, at: datetime) -> PhaseState:
    """The phase the clock is in: phases run back to back from started_at, scaled to the session."""
    plan = session.phase_plan
    total_planned = sum(phase["minutes"] for phase in plan) or 1
    session_seconds = (session.deadline_at - session.started_at).total_seconds()
    scale = session_seconds / (total_planned * 60)
    start = session.started_at
    for index, phase in enumerate(plan):
        end = start + timedelta(seconds=phase["minutes"] * 60 * scale)
        if at < end or index == len(plan) - 1:
            return PhaseState(index, phase["key"], phase["title"], phase.get("goal", ""), start, end)
        start = end
    raise AssertionError("a phase plan has at least one phase")  # pragma: no cover


def turn_as_frame(turn: Turn, *, content: str | None = None) -> dict[str, Any]:
    return {
        "id": turn.pk,
        "seq": turn.seq,
        "role": turn.role,
        "status": turn.status,
        "content": turn.content if content is None else content,
        "client_id": turn.client_id,
    }


def transcript_for_sync(*, session: InterviewSession) -> list[dict[str, Any]]:
    """The transcript as the browser needs it on (re)connect, streaming replies as far as they got.

    A streaming turn's text comes from Redis (written before every delta is sent) when that is
    ahead of the last partial save in PostgreSQL.
    """
    frames = []
    for turn in session.turns.order_by("seq"):
        content = turn.content
        if turn.status == Turn.Status.STREAMING:
            live_text = live.partial_text(turn.pk)
            if live_text is not None and len(live_text) >= len(content):
                content = live_text
        frames.append(turn_as_frame(turn, content=content))
    return frames


def session_sync_frame(*, session: InterviewSession, now: datetime) -> dict[str, Any]:
    from interview_platform import realtime

    return {
        "type": realtime.SYNC,
        "server_time": now.timestamp() * 1000,
        "session": {
            "id": session.pk,
            "status": session.status,
            "started_at": session.started_at.timestamp() * 1000,
            "deadline_at": session.deadline_at.timestamp() * 1000,
            "phase_plan": session.phase_plan,
            "end_reason": session.end_reason,
        },
        "turns": transcript_for_sync(session=session),
    }
