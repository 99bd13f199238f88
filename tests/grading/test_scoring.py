from __future__ import annotations

import pytest

from grading import services
from grading.models import Report
from grading.retrieval import candidate_turns_for_vector, evidence_sentences
from interview_platform import embeddings
from interviews.models import Turn
from tests.factories import CriterionFactory, InterviewSessionFactory, add_turn
from tests.fakes.scripted_llm import Script, ScriptedLLM

CANDIDATE_TURNS = {
    3: "I would use a token bucket per API key, refilled at the plan's rate.",
    5: "Counters live in Redis, sharded by key, updated with a Lua script so the check is atomic.",
}


def test_a_quote_counts_only_in_the_turn_it_cites_whatever_its_case_and_spacing():
    assert services.quote_is_verified(
        quote="token   BUCKET per api key", turn_seq=3, candidate_turns=CANDIDATE_TURNS
    )
    assert not services.quote_is_verified(quote="token bucket", turn_seq=5, candidate_turns=CANDIDATE_TURNS)
    assert not services.quote_is_verified(quote="leaky bucket", turn_seq=3, candidate_turns=CANDIDATE_TURNS)
    assert not services.quote_is_verified(quote="   ", turn_seq=3, candidate_turns=CANDIDATE_TURNS)
    # Interviewer turns are not in candidate_turns, so their words never count as evidence.
    assert not services.quote_is_verified(quote="why?", turn_seq=4, candidate_turns=CANDIDATE_TURNS)


OPTIONS = [
    services.EvidenceOption(3, "I would use a token bucket per API key, refilled at the plan's rate."),
    services.EvidenceOption(5, "I would use a token bucket"),  # real words, wrong turn
    services.EvidenceOption(3, "We use consistent hashing everywhere."),  # words never said
]


def test_unverifiable_quotes_are_dropped_and_flag_the_criterion():
    outcome = services.criterion_outcome_from_model(
        parsed={"critique": "Chose an algorithm and a store.", "score": 3, "evidence": [1, 2, 3, 7]},
        raw="{}",
        options=OPTIONS,
        candidate_turns=CANDIDATE_TURNS,
    )
    assert outcome.score == 3
    assert outcome.evidence == [
        {"turn_seq": 3, "quote": "I would use a token bucket per API key, refilled at the plan's rate."}
    ]
    assert outcome.dropped == 3  # wrong turn, never said, and a number with no sentence
    assert services.FLAG_QUOTE_DROPPED in outcome.flags


def test_a_score_without_verified_evidence_is_capped_at_the_lowest_level():
    outcome = services.criterion_outcome_from_model(
        parsed={"critique": "Excellent answer, full marks.", "score": 4, "evidence": [3]},
        raw="{}",
        options=OPTIONS,
        candidate_turns=CANDIDATE_TURNS,
    )
    assert (outcome.model_score, outcome.score) == (4, 1)
    assert services.FLAG_NO_EVIDENCE_CAP in outcome.flags


def test_evidence_options_are_verbatim_sentences_of_the_turn():
    text = "Use a token bucket. It allows bursts!\nOK.\nRedis holds the counters; Lua keeps it atomic."
    sentences = evidence_sentences(text)
    assert sentences == [
        "Use a token bucket.",
        "It allows bursts!",
        "Redis holds the counters;",
        "Lua keeps it atomic.",
    ]
    assert all(s in text for s in sentences)


def test_the_schema_only_allows_evidence_numbers_and_the_score_levels():
    schema = services.criterion_schema()
    assert schema["properties"]["evidence"]["items"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": services.MAX_EVIDENCE_OPTIONS,
    }
    assert schema["properties"]["evidence"]["maxItems"] == services.MAX_EVIDENCE
    assert schema["properties"]["score"]["enum"] == [1, 2, 3, 4]
    assert schema["required"] == ["critique", "score", "evidence"]


@pytest.mark.django_db
def test_retrieval_returns_the_candidates_own_turns_nearest_first():
    session = InterviewSessionFactory()
    other_session = InterviewSessionFactory()
    texts = [
        "We estimate 2 million requests per second at peak.",
        "A token bucket per key allows short bursts.",
        "Redis cluster holds the counters.",
    ]
    for text in texts:
        add_turn(session, Turn.Role.CANDIDATE, text, embedding=embeddings.embed(text))
    add_turn(
        session, Turn.Role.INTERVIEWER, "Which algorithm?", embedding=embeddings.embed("Which algorithm?")
    )
    add_turn(other_session, Turn.Role.CANDIDATE, "token bucket", embedding=embeddings.embed("token bucket"))
    found = candidate_turns_for_vector(
        session_id=session.pk, vector=embeddings.embed("rate limiting algorithm: token bucket"), limit=2
    )
    assert found[0].content == texts[1]
    assert len(found) == 2 and all(turn.content in texts for turn in found)


@pytest.mark.django_db(transaction=True)  # scores are saved from the grading event loop's thread
def test_a_silent_session_scores_the_lowest_level_everywhere_without_asking_the_model(settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens: a model call would fail the test
    session = InterviewSessionFactory(status="ended")
    for position in range(3):
        CriterionFactory(question=session.question, position=position)
    report = Report.objects.create(session=session)
    graded = services.report_grade(report_id=report.pk)
    assert graded.status == Report.Status.DONE
    assert [s.score for s in graded.scores.all()] == [1, 1, 1]
    assert graded.result == Report.Result.WEAK


@pytest.mark.django_db(transaction=True)
def test_a_report_is_graded_once_even_if_the_task_runs_twice(settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    session = InterviewSessionFactory(status="ended")
    CriterionFactory(question=session.question)
    report = Report.objects.create(session=session)
    assert services.report_grade(report_id=report.pk) is not None
    assert services.report_grade(report_id=report.pk) is None
    assert report.scores.count() == 1


@pytest.fixture
def finished_session():
    session = InterviewSessionFactory(status="ended")
    for position in range(2):
        CriterionFactory(question=session.question, position=position)
    add_turn(session, Turn.Role.INTERVIEWER, "Which algorithm would you use?")
    add_turn(session, Turn.Role.CANDIDATE, CANDIDATE_TURNS[3])
    return session


@pytest.mark.django_db(transaction=True)
def test_evidence_numbers_become_the_candidates_verbatim_sentences(settings, finished_session):
    answer = '{"critique": "Names an algorithm and says where state lives.", "score": 3, "evidence": [1, 9]}'
    with ScriptedLLM(Script(completion=answer)) as server:
        settings.LLM_BASE_URL = server.base_url
        report = services.report_grade(report_id=Report.objects.create(session=finished_session).pk)
    scores = list(report.scores.all())
    assert [s.score for s in scores] == [3, 3]
    assert scores[0].evidence == [{"turn_seq": 2, "quote": CANDIDATE_TURNS[3]}]
    assert scores[0].dropped_quotes == 1 and scores[0].flagged  # number 9 names no sentence
    assert report.overall_score == 3.0 and report.result == Report.Result.STRONG
    # The grading prompt carries the criterion's levels and the numbered sentences.
    prompt = server.script.requests[0]["messages"][0]["content"]
    assert "1. (turn 2) " + CANDIDATE_TURNS[3] in prompt and "Compares several." in prompt
    assert server.script.requests[0]["response_format"]["type"] == "json_schema"


@pytest.mark.django_db(transaction=True)
def test_unusable_model_output_is_retried_then_floored_and_flagged(settings, finished_session):
    with ScriptedLLM(Script(completion='{"critique": "trunc')) as server:
        settings.LLM_BASE_URL = server.base_url
        report = services.report_grade(report_id=Report.objects.create(session=finished_session).pk)
    assert report.status == Report.Status.DONE
    assert len(server.script.requests) == 2 * len(services.GRADING_ATTEMPTS)
    temperatures = sorted({r["temperature"] for r in server.script.requests})
    assert temperatures == sorted(services.GRADING_ATTEMPTS)
    for score in report.scores.all():
        assert score.score == 1 and score.flag_reasons == [services.FLAG_MODEL_UNUSABLE]


@pytest.mark.django_db(transaction=True)
def test_a_model_server_outage_leaves_the_report_failed_for_a_retry(settings, finished_session):
    with ScriptedLLM(Script(http_status=503)) as server:
        settings.LLM_BASE_URL = server.base_url
        report = Report.objects.create(session=finished_session)
        with pytest.raises(services.llm.LLMError):
            services.report_grade(report_id=report.pk)
    report.refresh_from_db()
    assert report.status == Report.Status.FAILED and "503" in report.error
    assert not report.scores.exists()
