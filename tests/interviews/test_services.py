from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from grading.models import Report
from interview_platform import errors
from interviews import live, services
from interviews.models import InterviewSession, Question, Turn
from interviews.prompting import trim_history
from interviews.selectors import session_phase
from tests.factories import InterviewSessionFactory, QuestionFactory, UserFactory, add_turn

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_task_enqueue():
    """Records what would be enqueued instead of sending it to a broker no worker reads in these tests."""
    with (
        mock.patch("interviews.tasks.interviewer_turn.delay") as interviewer_turn,
        mock.patch("grading.tasks.grade_session.delay") as grade_session,
    ):
        yield {"interviewer_turn": interviewer_turn, "grade_session": grade_session}


def test_session_start_copies_the_plan_sets_the_deadline_and_opens_with_the_problem():
    question = QuestionFactory()
    session = services.session_start(candidate=UserFactory(), question=question)
    assert session.phase_plan == question.phase_plan
    assert session.deadline_at - session.started_at == timedelta(minutes=30)
    opening = session.turns.get()
    assert opening.role == Turn.Role.INTERVIEWER and opening.seq == 1
    assert question.prompt in opening.content


def test_session_start_refuses_a_draft_question():
    question = QuestionFactory(status=Question.Status.DRAFT)
    with pytest.raises(errors.ApplicationError) as raised:
        services.session_start(candidate=UserFactory(), question=question)
    assert raised.value.message == errors.QUESTION_NOT_AVAILABLE


def test_candidate_message_is_stored_then_the_reply_is_enqueued_on_commit(
    no_task_enqueue, django_capture_on_commit_callbacks
):
    session = InterviewSessionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        turn, created = services.turn_record_candidate(
            session_id=session.pk, candidate=session.candidate, text="  Who are the users?  ", client_id="c1"
        )
    assert created and turn.content == "Who are the users?" and turn.seq == 1
    no_task_enqueue["interviewer_turn"].assert_called_once_with(turn.pk)


def test_a_resent_message_with_the_same_client_id_is_stored_once(no_task_enqueue):
    session = InterviewSessionFactory()
    first, created_first = services.turn_record_candidate(
        session_id=session.pk, candidate=session.candidate, text="hello", client_id="same"
    )
    again, created_again = services.turn_record_candidate(
        session_id=session.pk, candidate=session.candidate, text="hello", client_id="same"
    )
    assert created_first and not created_again and first.pk == again.pk
    assert session.turns.count() == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [("   ", errors.MESSAGE_EMPTY), ("x" * 4001, errors.MESSAGE_TOO_LONG.format(limit=4000))],
)
def test_invalid_messages_are_rejected_with_a_clear_error(text, message, no_task_enqueue):
    session = InterviewSessionFactory()
    with pytest.raises(errors.ApplicationError) as raised:
        services.turn_record_candidate(session_id=session.pk, candidate=session.candidate, text=text)
    assert raised.value.message == message
    assert not session.turns.exists()


def test_messages_over_the_rate_limit_are_refused(settings, no_task_enqueue):
    settings.INTERVIEW_MESSAGES_PER_MINUTE = 2
    session = InterviewSessionFactory()
    for text in ("one", "two"):
        services.turn_record_candidate(session_id=session.pk, candidate=session.candidate, text=text)
    with pytest.raises(errors.ApplicationError) as raised:
        services.turn_record_candidate(session_id=session.pk, candidate=session.candidate, text="three")
    assert raised.value.code == "rate_limited"


def test_a_message_after_the_deadline_is_refused_and_ends_the_session(
    no_task_enqueue, django_capture_on_commit_callbacks
):
    started = timezone.now() - timedelta(minutes=31)
    session = InterviewSessionFactory(started_at=started, deadline_at=started + timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(errors.ApplicationError):
        services.turn_record_candidate(session_id=session.pk, candidate=session.candidate, text="late")
    session.refresh_from_db()
    assert session.status == InterviewSession.Status.ENDED
    assert session.end_reason == InterviewSession.EndReason.TIME_UP
    assert not session.turns.filter(role=Turn.Role.CANDIDATE).exists()


def test_another_user_cannot_write_into_a_session(no_task_enqueue):
    session = InterviewSessionFactory()
    with pytest.raises(InterviewSession.DoesNotExist):
        services.turn_record_candidate(session_id=session.pk, candidate=UserFactory(), text="hi")


def test_a_new_message_cancels_the_reply_that_is_still_streaming(
    no_task_enqueue, django_capture_on_commit_callbacks
):
    session = InterviewSessionFactory()
    streaming = add_turn(session, Turn.Role.INTERVIEWER, "So, how would", status=Turn.Status.STREAMING)
    with django_capture_on_commit_callbacks(execute=True):
        services.turn_record_candidate(session_id=session.pk, candidate=session.candidate, text="wait")
    assert live._sync_client().exists(live.cancel_key(streaming.pk))


def test_finalize_ends_a_session_exactly_once_and_enqueues_grading_once(
    no_task_enqueue, django_capture_on_commit_callbacks
):
    session = InterviewSessionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        first = services.session_finalize(session_id=session.pk, reason="candidate")
        second = services.session_finalize(session_id=session.pk, reason="time_up")
    assert (first, second) == (True, False)
    session.refresh_from_db()
    assert session.end_reason == "candidate"
    assert Report.objects.filter(session=session).count() == 1
    no_task_enqueue["grade_session"].assert_called_once_with(session.report.pk)


def test_the_sweeper_ends_only_sessions_past_their_deadline(no_task_enqueue):
    started = timezone.now() - timedelta(minutes=40)
    expired = InterviewSessionFactory(started_at=started, deadline_at=started + timedelta(minutes=30))
    running = InterviewSessionFactory()
    assert services.session_finalize_expired() == [expired.pk]
    running.refresh_from_db()
    assert running.is_active


def test_the_phase_follows_the_server_clock_and_the_plan():
    session = InterviewSessionFactory()
    start = session.started_at
    assert session_phase(session=session, at=start + timedelta(minutes=1)).key == "requirements"
    assert session_phase(session=session, at=start + timedelta(minutes=6)).key == "high_level_design"
    assert session_phase(session=session, at=start + timedelta(minutes=29)).key == "deep_dive"


def test_interviewer_turn_begin_skips_a_turn_that_a_newer_message_superseded(no_task_enqueue):
    session = InterviewSessionFactory()
    older = add_turn(session, Turn.Role.CANDIDATE, "first thought")
    add_turn(session, Turn.Role.CANDIDATE, "actually, second thought")
    assert services.interviewer_turn_begin(candidate_turn_id=older.pk) is None


def test_interviewer_turn_begin_creates_one_reply_per_candidate_turn():
    session = InterviewSessionFactory()
    candidate_turn = add_turn(session, Turn.Role.CANDIDATE, "Let's clarify the read/write ratio.")
    reply = services.interviewer_turn_begin(candidate_turn_id=candidate_turn.pk)
    assert reply is not None and reply.status == Turn.Status.STREAMING and reply.seq == 2
    services.interviewer_turn_finish(turn_id=reply.pk, content="Why?", status=Turn.Status.COMPLETE)
    assert services.interviewer_turn_begin(candidate_turn_id=candidate_turn.pk) is None


def test_trim_history_keeps_the_opening_and_the_newest_turns_within_budget():
    messages = [{"role": "assistant", "content": "opening " * 10}] + [
        {"role": "user", "content": f"answer {i} " + "words " * 100} for i in range(20)
    ]
    trimmed = trim_history(messages, budget_tokens=1200)
    assert trimmed[0] == messages[0]
    assert trimmed[-1] == messages[-1]
    assert len(trimmed) < len(messages)
    assert trim_history(messages[:3], budget_tokens=100_000) == messages[:3]


def test_a_reply_left_streaming_by_a_dead_worker_is_failed_with_the_text_it_reached():
    session = InterviewSessionFactory()
    stale = add_turn(session, Turn.Role.INTERVIEWER, "I", status=Turn.Status.STREAMING)
    Turn.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=6))
    fresh = add_turn(session, Turn.Role.INTERVIEWER, "Wh", status=Turn.Status.STREAMING)
    live._sync_client().set(live.partial_key(stale.pk), "I'm glad you brought it up.")
    assert services.turn_fail_stale_streams() == [stale.pk]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == Turn.Status.FAILED and stale.content == "I'm glad you brought it up."
    assert fresh.status == Turn.Status.STREAMING
