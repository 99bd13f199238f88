"""Writes for interviews: starting, recording turns, finalizing. Views, consumers and tasks call these."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from interview_platform import errors, realtime
from interviews import live, prompting
from interviews.models import InterviewSession, Question, Turn
from interviews.selectors import session_phase, turn_as_frame

logger = logging.getLogger(__name__)


def _next_seq(session: InterviewSession) -> int:
    """Call with the session row locked (select_for_update)."""
    session.last_seq += 1
    session.save(update_fields=["last_seq"])
    return session.last_seq


@transaction.atomic
def session_start(*, candidate: AbstractBaseUser, question: Question) -> InterviewSession:
    if question.status != Question.Status.PUBLISHED:
        raise errors.question_not_available()
    now = timezone.now()
    minutes = sum(phase["minutes"] for phase in question.phase_plan)
    session = InterviewSession.objects.create(
        candidate=candidate,
        question=question,
        phase_plan=question.phase_plan,
        rubric_version=question.rubric_version,
        started_at=now,
        deadline_at=now + timedelta(minutes=minutes),
    )
    # The opening is written, not generated: it is instant, and it states the problem exactly.
    Turn.objects.create(
        session=session,
        seq=_next_seq(session),
        role=Turn.Role.INTERVIEWER,
        content=prompting.opening_message(session=session),
        phase_key=session.phase_plan[0]["key"],
        prompt_version=prompting.PROMPT_VERSION,
        completed_at=now,
    )
    return session


def turn_record_candidate(
    *, session_id: int, candidate: AbstractBaseUser, text: str, client_id: str = ""
) -> tuple[Turn, bool]:
    """Stores a candidate message and, once committed, asks for the interviewer's reply.

    Returns (turn, created). A message resent with the same client_id after a dropped socket
    returns the stored turn and enqueues nothing. Rule for a message sent while a reply is still
    streaming: the streaming reply is cancelled (its text so far is kept) and the interviewer
    answers the newest message, with the whole conversation in view.
    """
    text = text.strip()
    if not text:
        raise errors.message_empty()
    limit = settings.INTERVIEW_MESSAGE_MAX_CHARS
    if len(text) > limit:
        raise errors.message_too_long(limit)
    client_id = client_id[:64]
    try:
        return _turn_record_candidate(session_id, candidate, text, client_id)
    except _DeadlinePassed:
        # The clock ran out before the sweeper noticed: end it now (after the rollback above).
        session_finalize(session_id=session_id, reason=InterviewSession.EndReason.TIME_UP)
        raise errors.session_not_active() from None


class _DeadlinePassed(Exception):
    pass


def _turn_record_candidate(
    session_id: int, candidate: AbstractBaseUser, text: str, client_id: str
) -> tuple[Turn, bool]:
    with transaction.atomic():
        session = InterviewSession.objects.select_for_update().get(pk=session_id, candidate=candidate)
        if client_id:
            existing = session.turns.filter(client_id=client_id).first()
            if existing is not None:
                return existing, False
        now = timezone.now()
        if not session.is_active:
            raise errors.session_not_active()
        if now >= session.deadline_at:
            raise _DeadlinePassed
        recent = session.turns.filter(
            role=Turn.Role.CANDIDATE, created_at__gte=now - timedelta(minutes=1)
        ).count()
        if recent >= settings.INTERVIEW_MESSAGES_PER_MINUTE:
            raise errors.message_rate_limited()
        streaming_ids = list(session.turns.filter(status=Turn.Status.STREAMING).values_list("pk", flat=True))
        try:
            with transaction.atomic():
                turn = Turn.objects.create(
                    session=session,
                    seq=_next_seq(session),
                    role=Turn.Role.CANDIDATE,
                    content=text,
                    client_id=client_id,
                    phase_key=session_phase(session=session, at=now).key,
                )
        except IntegrityError:  # the same client_id raced in from a second socket
            return session.turns.get(client_id=client_id), False

        def after_commit() -> None:
            from interviews.tasks import interviewer_turn

            live.request_cancel(streaming_ids)
            interviewer_turn.delay(turn.pk)

        transaction.on_commit(after_commit)
    return turn, True


def session_finalize(*, session_id: int, reason: str) -> bool:
    """Ends a session exactly once (whoever gets here first: consumer, sweeper, candidate).

    Cancels the reply in flight, creates the report row and enqueues grading after commit.
    Returns False when the session had already ended.
    """
    from grading.models import Report

    with transaction.atomic():
        now = timezone.now()
        ended = InterviewSession.objects.filter(pk=session_id, status=InterviewSession.Status.ACTIVE).update(
            status=InterviewSession.Status.ENDED, end_reason=reason, ended_at=now
        )
        if not ended:
            return False
        streaming_ids = list(
            Turn.objects.filter(session_id=session_id, status=Turn.Status.STREAMING).values_list(
                "pk", flat=True
            )
        )
        report, _ = Report.objects.get_or_create(session_id=session_id)

        def after_commit() -> None:
            from grading.tasks import grade_session

            live.request_cancel(streaming_ids)
            realtime.publish(
                realtime.session_group(session_id),
                {"type": realtime.SESSION_ENDED, "reason": reason, "ended_at": now.timestamp() * 1000},
            )
            grade_session.delay(report.pk)

        transaction.on_commit(after_commit)
    logger.info("session %s ended (%s)", session_id, reason)
    return True


def session_finalize_expired(*, now=None) -> list[int]:  # type: ignore[no-untyped-def]
    """The beat sweeper: ends sessions whose deadline passed, with or without a browser attached."""
    now = now or timezone.now()
    expired = list(
        InterviewSession.objects.filter(
            status=InterviewSession.Status.ACTIVE, deadline_at__lte=now
        ).values_list("pk", flat=True)
    )
    return [
        session_id
        for session_id in expired
        if session_finalize(session_id=session_id, reason=InterviewSession.EndReason.TIME_UP)
    ]


STALE_STREAM_AFTER = timedelta(minutes=5)
STALE_STREAM_ERROR = "The reply was interrupted."


def turn_fail_stale_streams(*, now=None) -> list[int]:  # type: ignore[no-untyped-def]
    """A reply whose worker died (and whose task is not redelivered yet) must not look 'streaming'
    forever: it is failed with the text it had reached, and every tab watching is told."""
    now = now or timezone.now()
    failed = []
    for turn in Turn.objects.filter(status=Turn.Status.STREAMING, created_at__lt=now - STALE_STREAM_AFTER):
        live_text = live.partial_text(turn.pk) or ""
        content = live_text if len(live_text) > len(turn.content) else turn.content
        updated = Turn.objects.filter(pk=turn.pk, status=Turn.Status.STREAMING).update(
            status=Turn.Status.FAILED, error=STALE_STREAM_ERROR, completed_at=now, content=content
        )
        if updated:
            turn.refresh_from_db()
            realtime.publish(
                realtime.session_group(turn.session_id),
                {"type": realtime.TURN_FAILED, "turn": turn_as_frame(turn), "message": STALE_STREAM_ERROR},
            )
            failed.append(turn.pk)
    return failed


# --- The interviewer's side, called by the streaming task ----------------------------------------


def interviewer_turn_begin(*, candidate_turn_id: int) -> Turn | None:
    """Creates (or, on redelivery, restarts) the streaming interviewer turn for a candidate turn.

    Returns None when no reply is due: the session ended, the turn was already answered, or a
    newer candidate message arrived (its own task will answer).
    """
    with transaction.atomic():
        candidate_turn = Turn.objects.select_related("session").get(pk=candidate_turn_id)
        session = InterviewSession.objects.select_for_update().get(pk=candidate_turn.session_id)
        if not session.is_active or timezone.now() >= session.deadline_at:
            return None
        newer = session.turns.filter(role=Turn.Role.CANDIDATE, seq__gt=candidate_turn.seq).exists()
        if newer:
            return None
        reply = Turn.objects.filter(reply_to=candidate_turn).first()
        if reply is not None:
            if reply.status != Turn.Status.STREAMING:
                return None
            # The task was redelivered after its worker died mid-stream: start this reply over.
            reply.content = ""
            reply.save(update_fields=["content"])
            return reply
        return Turn.objects.create(
            session=session,
            seq=_next_seq(session),
            role=Turn.Role.INTERVIEWER,
            status=Turn.Status.STREAMING,
            reply_to=candidate_turn,
            phase_key=session_phase(session=session, at=timezone.now()).key,
            model_name=settings.LLM_MODEL,
            prompt_version=prompting.PROMPT_VERSION,
        )


def interviewer_turn_save_partial(*, turn_id: int, content: str) -> None:
    Turn.objects.filter(pk=turn_id, status=Turn.Status.STREAMING).update(content=content)


def interviewer_turn_finish(
    *,
    turn_id: int,
    content: str,
    status: str,
    error: str = "",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    ttft_ms: float | None = None,
    tokens_per_second: float | None = None,
) -> Turn:
    turn = Turn.objects.get(pk=turn_id)
    turn.content = content
    turn.status = status
    turn.error = error
    turn.prompt_tokens = prompt_tokens
    turn.completion_tokens = completion_tokens
    turn.ttft_ms = ttft_ms
    turn.tokens_per_second = tokens_per_second
    turn.completed_at = timezone.now()
    turn.save()
    return turn
