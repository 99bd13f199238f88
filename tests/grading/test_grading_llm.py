"""Grading a real transcript with the real model server (vLLM, structured output)."""

from __future__ import annotations

import pytest

from grading import services
from grading.models import Report
from interviews.models import Turn
from interviews.seeding import load_files, seed_questions
from tests.factories import InterviewSessionFactory, add_turn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.llm]

ANSWERS = [
    "Let me clarify: is this a per-user or per-API-key limit, and do we need it across all regions?",
    "Peak is 2 million requests per second, so the limiter must add under a millisecond of latency.",
    "I would use a token bucket per API key, refilled at the plan's rate, stored in a Redis cluster.",
    "The check and decrement happen in one Lua script so two gateways cannot both take the last token.",
    "If Redis is unreachable we fail open for paid plans with a local in-memory fallback limit.",
]


def test_every_criterion_gets_a_score_a_critique_and_only_verifiable_quotes(llm_base_url):
    seed_questions([q for q in load_files() if q["slug"] == "rate-limiter"])
    session = InterviewSessionFactory(question__slug="ignored", status="ended")
    from interviews.models import Question

    session.question = Question.objects.get(slug="rate-limiter")
    session.rubric_version = session.question.rubric_version
    session.save()
    add_turn(session, Turn.Role.INTERVIEWER, "Design a rate limiter. What would you like to clarify?")
    for answer in ANSWERS:
        add_turn(session, Turn.Role.CANDIDATE, answer)
        add_turn(session, Turn.Role.INTERVIEWER, "Why?")
    report = Report.objects.create(session=session)

    graded = services.report_grade(report_id=report.pk)

    criteria = list(session.question.criteria.filter(rubric_version=session.rubric_version))
    scores = list(graded.scores.select_related("criterion"))
    assert graded.status == Report.Status.DONE
    assert {s.criterion_id for s in scores} == {c.pk for c in criteria}
    assert graded.model_name and graded.prompt_version == services.PROMPT_VERSION
    assert graded.rubric_version == session.rubric_version
    assert graded.overall_score is not None and graded.result
    candidate_turns = dict(session.turns.filter(role=Turn.Role.CANDIDATE).values_list("seq", "content"))
    for score in scores:
        assert score.score in (1, 2, 3, 4) and score.critique
        assert score.raw_output
        for item in score.evidence:
            assert services.quote_is_verified(
                quote=item["quote"], turn_seq=item["turn_seq"], candidate_turns=candidate_turns
            )
        if not score.evidence:
            assert score.score == 1
