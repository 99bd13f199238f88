"""A whole interview in Chromium against Daphne, Celery, beat, PostgreSQL, Redis and vLLM."""

from __future__ import annotations

import itertools
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from grading.models import Criterion, Report
from grading.services import quote_is_verified
from interviews.models import InterviewSession, Question, Turn
from interviews.seeding import load_files, seed_questions

pytestmark = [pytest.mark.e2e, pytest.mark.llm, pytest.mark.django_db(transaction=True)]

PASSWORD = "e2e-candidate-password"
ANSWERS = [
    "First, who calls the API and do we limit per user or per API key? I assume per API key, 100 requests per second each.",
    "I would use a token bucket per API key stored in Redis, updated atomically with a Lua script, and fail open if Redis is down.",
]


@pytest.fixture
def short_question() -> Question:
    """The rate-limiter question from the bank, on a two-minute clock."""
    seed_questions([q for q in load_files() if q["slug"] == "rate-limiter"])
    source = Question.objects.get(slug="rate-limiter")
    question = Question.objects.create(
        slug="rate-limiter-short",
        title="Design a rate limiter (two-minute drill)",
        category=source.category,
        difficulty=source.difficulty,
        duration_minutes=2,
        prompt=source.prompt,
        interviewer_focus=source.interviewer_focus,
        phase_plan=[
            {"key": "requirements", "title": "Requirements", "minutes": 1, "goal": "Agree on scope."},
            {"key": "design", "title": "Design", "minutes": 1, "goal": "Sketch the limiter."},
        ],
        status=Question.Status.PUBLISHED,
    )
    for criterion in source.criteria.all():
        criterion.pk, criterion.question = None, question
        criterion.save()
    return question


@pytest.fixture
def candidate():
    user = get_user_model().objects.create(username="e2e-candidate")
    user.set_password(PASSWORD)
    user.save()
    return user


def streaming_text(page) -> str | None:
    return page.evaluate(
        "() => { const t = document.querySelector('#transcript .turn.streaming .text'); return t ? t.textContent : null; }"
    )


def wait_for_reply(page, replies_before: int, *, timeout_s: float = 120) -> list[str]:
    """Waits for the next interviewer reply to finish; returns the partial texts seen while it streamed."""
    partials: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = streaming_text(page)
        if text and (not partials or partials[-1] != text):
            partials.append(text)
        done = page.locator("#transcript .turn.interviewer:not(.streaming)").count()
        if done > replies_before and text is None:
            return partials
        page.wait_for_timeout(40)
    raise AssertionError(f"no finished reply within {timeout_s} s")


def dom_transcript(page) -> list[str]:
    return page.eval_on_selector_all("#transcript .turn .text", "els => els.map(e => e.textContent)")


def as_displayed(content: str) -> str:
    """The text a turn shows: its **bold** markers become <strong> elements."""
    return re.sub(r"\*\*(.+?)\*\*", r"\1", content, flags=re.S)


def test_a_candidate_runs_a_whole_interview_in_the_browser(live_stack, browser, short_question, candidate):
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(live_stack.base_url + "/accounts/login/")
    page.get_by_label("Username").fill(candidate.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name=short_question.title).click()
    page.get_by_role("button", name="Start the interview").click()
    page.wait_for_url("**/sessions/*/")
    session = InterviewSession.objects.get(candidate=candidate)
    page.get_by_text("Connected").wait_for()
    assert page.locator("#transcript .turn.interviewer").count() == 1  # the opening
    assert page.locator("#clock-total").inner_text() != "--:--"

    # Answer 1: the reply streams token by token.
    page.get_by_label("Your answer").fill(ANSWERS[0])
    page.keyboard.press("Enter")
    partials = wait_for_reply(page, replies_before=1)
    assert len(partials) >= 2, f"the reply arrived in one piece, not streamed: {partials}"
    assert all(len(a) < len(b) for a, b in itertools.pairwise(partials))

    # Answer 2: reload in the middle of the reply; the rest arrives with no gap and no duplicate.
    page.get_by_label("Your answer").fill(ANSWERS[1])
    page.get_by_role("button", name="Send").click()
    page.wait_for_function(
        "() => { const t = document.querySelector('#transcript .turn.streaming .text'); return t && t.textContent.length > 0; }",
        timeout=60_000,
    )
    page.reload()
    page.get_by_text("Connected").wait_for()
    wait_for_reply(page, replies_before=0)
    stored = [as_displayed(c) for c in session.turns.order_by("seq").values_list("content", flat=True)]
    assert dom_transcript(page) == stored

    # The clock runs out on the server; the room says so and moves to the report.
    page.locator("#ended").wait_for(state="visible", timeout=150_000)
    page.wait_for_url("**/report/", timeout=30_000)
    page.locator("#overall-h").wait_for(timeout=600_000)  # grading on a CPU model takes a while

    session.refresh_from_db()
    assert session.status == InterviewSession.Status.ENDED
    assert session.end_reason == InterviewSession.EndReason.TIME_UP
    turns = list(session.turns.order_by("seq"))
    assert [t.content for t in turns if t.role == Turn.Role.CANDIDATE] == ANSWERS
    replies = [t for t in turns[1:] if t.role == Turn.Role.INTERVIEWER]
    assert len(replies) == 2
    first_reply = replies[0]
    assert first_reply.status == Turn.Status.COMPLETE
    assert first_reply.ttft_ms and first_reply.completion_tokens and first_reply.model_name
    report = Report.objects.get(session=session)
    assert report.status == Report.Status.DONE
    criteria = set(Criterion.objects.filter(question=short_question).values_list("pk", flat=True))
    assert set(report.scores.values_list("criterion_id", flat=True)) == criteria
    candidate_turns = {t.seq: t.content for t in turns if t.role == Turn.Role.CANDIDATE}
    for score in report.scores.all():
        for item in score.evidence:
            assert quote_is_verified(
                quote=item["quote"], turn_seq=item["turn_seq"], candidate_turns=candidate_turns
            )
    page_text = page.locator("main").inner_text()
    for score in report.scores.select_related("criterion"):
        assert score.criterion.title in page_text
    page.close()


def test_the_server_ends_and_grades_a_session_with_no_browser_attached(live_stack, short_question, candidate):
    now = timezone.now()
    session = InterviewSession.objects.create(
        candidate=candidate,
        question=short_question,
        phase_plan=short_question.phase_plan,
        rubric_version=short_question.rubric_version,
        started_at=now - timedelta(minutes=2),
        deadline_at=now + timedelta(seconds=2),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session.refresh_from_db()
        report = Report.objects.filter(session=session).first()
        if report is not None and report.status == Report.Status.DONE:
            break
        time.sleep(0.5)
    assert session.status == InterviewSession.Status.ENDED
    assert session.end_reason == InterviewSession.EndReason.TIME_UP
    assert report is not None and report.status == Report.Status.DONE
    assert set(report.scores.values_list("score", flat=True)) == {1}  # nothing was said
