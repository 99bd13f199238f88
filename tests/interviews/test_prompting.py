from __future__ import annotations

from datetime import timedelta

import pytest

from interview_platform import embeddings
from interviews import prompting
from interviews.models import Turn
from tests.factories import CriterionFactory, InterviewSessionFactory, QuestionFactory, add_turn

pytestmark = pytest.mark.django_db


@pytest.fixture
def session_with_rubric():
    question = QuestionFactory()
    texts = [
        ("Capacity estimation", "Estimates requests per second, storage and bandwidth with numbers."),
        ("Rate-limiting algorithm", "Chooses token bucket or sliding window and explains the trade-off."),
        ("Failure handling", "Decides whether to fail open or closed when the counter store is down."),
    ]
    for position, (title, description) in enumerate(texts):
        CriterionFactory(
            question=question,
            title=title,
            description=description,
            position=position,
            embedding=embeddings.embed(f"{title}. {description}"),
        )
    return InterviewSessionFactory(question=question)


def test_the_system_message_is_byte_identical_across_turns(session_with_rubric):
    session = session_with_rubric
    first_turn = add_turn(session, Turn.Role.CANDIDATE, "We need 2M requests per second.")
    first_reply = add_turn(session, Turn.Role.INTERVIEWER, "", status=Turn.Status.STREAMING)
    first = prompting.build_messages(session=session, reply=first_reply, now=session.started_at)
    first_reply.content = "Why that number?"
    first_reply.save()
    add_turn(session, Turn.Role.CANDIDATE, "Peak traffic from the mobile apps.")
    later_reply = add_turn(session, Turn.Role.INTERVIEWER, "", status=Turn.Status.STREAMING)
    later = prompting.build_messages(
        session=session, reply=later_reply, now=session.started_at + timedelta(minutes=20)
    )
    assert first[0] == later[0] and first[0]["role"] == "system"
    # The conversation grows only at its end: the earlier prefix is unchanged.
    assert later[1:3] == [
        {"role": "user", "content": first_turn.content},
        {"role": "assistant", "content": "Why that number?"},
    ]
    # The per-turn notes ride on the newest candidate message only.
    assert first[-1]["role"] == later[-1]["role"] == "user"
    assert first[-1]["content"].startswith(first_turn.content)
    assert "Requirements" in first[-1]["content"] and "Deep dive" in later[-1]["content"]
    assert [m["role"] for m in later].count("system") == 1


def test_uncovered_criteria_leave_out_what_the_candidate_already_covered(session_with_rubric):
    session = session_with_rubric
    said = "I would use a token bucket per API key; sliding window counters cost more memory."
    turn = add_turn(session, Turn.Role.CANDIDATE, said, embedding=embeddings.embed(said))
    uncovered = prompting.uncovered_criteria(session=session, latest_turn=turn)
    assert uncovered, "the criteria the candidate did not touch are offered"
    assert not any("Rate-limiting algorithm" in line for line in uncovered)


def test_roles_alternate_even_when_a_reply_was_empty():
    messages = [
        {"role": "assistant", "content": "Welcome."},
        {"role": "user", "content": "First."},
        {"role": "user", "content": "Second."},
    ]
    assert prompting.merge_same_role(messages) == [
        {"role": "assistant", "content": "Welcome."},
        {"role": "user", "content": "First.\n\nSecond."},
    ]


def test_the_opening_is_condensed_to_its_question_in_the_history(session_with_rubric):
    session = session_with_rubric
    opening = (
        "Hi, I'll be your interviewer.\n\n**Design a rate limiter**\n\nLet's start: what would you clarify?"
    )
    add_turn(session, Turn.Role.INTERVIEWER, opening)
    add_turn(session, Turn.Role.CANDIDATE, "Per user or per key?")
    reply = add_turn(session, Turn.Role.INTERVIEWER, "", status=Turn.Status.STREAMING)
    messages = prompting.build_messages(session=session, reply=reply, now=session.started_at)
    assert messages[1] == {"role": "assistant", "content": "Let's start: what would you clarify?"}
