"""Grading v1: each criterion scored from the candidate's own words, retrieved with pgvector.

Per criterion the model writes a critique, then a score on the criterion's levels, then picks
evidence, all under a JSON schema vLLM enforces while decoding. Evidence is picked by number from a
list of sentences cut verbatim from the retrieved candidate turns, each labelled with its turn, so
the model cannot invent a quote; every quote is still checked against the turn it cites (a server
that ignores the schema, or a bad number, cannot sneak one in): an unverifiable quote is dropped
and the criterion flagged, and a criterion left without verified evidence cannot score above
level 1. The schema is the same for every request, so the server compiles its grammar once (an
enum of each transcript's sentences made vLLM compile a new grammar per request: ~40 s each on a
CPU). All criteria of a session are requested at once so vLLM batches them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from grading.models import SCORE_LEVELS, Criterion, CriterionScore, Report
from grading.retrieval import candidate_turns_for_vector, evidence_sentences
from grading.selectors import criteria_for_session
from interview_platform import embeddings, llm, realtime
from interviews.models import InterviewSession, Turn

logger = logging.getLogger(__name__)

PROMPT_VERSION = "grading-v1"
PROMPT_PATH = Path(settings.BASE_DIR) / "prompts" / "grading" / "v1" / "criterion.txt"
TURNS_PER_CRITERION = 4
MAX_EVIDENCE_OPTIONS = 24
MAX_TURN_CHARS = 900
MAX_EVIDENCE = 3
GRADING_MAX_TOKENS = 400
# A criterion whose answer is unusable (truncated JSON, say) is asked again, warmer, so the retry
# can take another path; after that it gets the floor and a review flag rather than block the report.
GRADING_ATTEMPTS = (0.0, 0.4, 0.8)
CLAIM_EXPIRES_AFTER = timedelta(minutes=15)
# The overall result from the weighted mean score (levels 1-4); the report page states these.
RESULT_THRESHOLDS = ((3.0, Report.Result.STRONG), (2.0, Report.Result.MIXED), (0.0, Report.Result.WEAK))

FLAG_QUOTE_DROPPED = "A quote the model gave was not found in the cited turn and was dropped."
FLAG_NO_EVIDENCE_CAP = "No verifiable evidence: the score was capped at level 1."
FLAG_MODEL_UNUSABLE = "The model gave no usable grade for this criterion; it needs human review."
CRITIQUE_SILENT = "The candidate said nothing in this interview, so there is no evidence for this criterion."


@functools.cache
def _prompt_template() -> str:
    return PROMPT_PATH.read_text()


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def quote_is_verified(*, quote: str, turn_seq: int, candidate_turns: dict[int, str]) -> bool:
    """A quote counts only if it is the candidate's own words in the turn it cites."""
    content = candidate_turns.get(turn_seq)
    needle = normalize(quote)
    return content is not None and bool(needle) and needle in normalize(content)


def criterion_schema() -> dict[str, Any]:
    evidence_item = {"type": "integer", "minimum": 1, "maximum": MAX_EVIDENCE_OPTIONS}
    return {
        "type": "object",
        "properties": {
            "critique": {"type": "string", "minLength": 20, "maxLength": 400},
            "score": {"type": "integer", "enum": list(SCORE_LEVELS)},
            "evidence": {"type": "array", "items": evidence_item, "maxItems": MAX_EVIDENCE},
        },
        "required": ["critique", "score", "evidence"],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class EvidenceOption:
    turn_seq: int
    sentence: str


@dataclass
class CriterionJob:
    criterion: Criterion
    messages: list[dict[str, str]]
    options: list[EvidenceOption]


@dataclass
class CriterionOutcome:
    score: int
    model_score: int
    critique: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    flags: list[str] = field(default_factory=list)
    raw: str = ""


def criterion_outcome_from_model(
    *, parsed: dict[str, Any], raw: str, options: list[EvidenceOption], candidate_turns: dict[int, str]
) -> CriterionOutcome:
    """Applies the checks no model output can get past: verified quotes, and the evidence floor."""
    model_score = parsed.get("score")
    if model_score not in SCORE_LEVELS:
        raise llm.LLMUnusableOutput(f"score outside the levels: {model_score!r}")
    evidence, dropped, seen = [], 0, set()
    for number in parsed.get("evidence") or []:
        if not isinstance(number, int) or not 1 <= number <= len(options):
            dropped += 1
            continue
        turn_seq, quote = options[number - 1].turn_seq, options[number - 1].sentence
        if not quote_is_verified(quote=quote, turn_seq=turn_seq, candidate_turns=candidate_turns):
            dropped += 1
            continue
        if (turn_seq, normalize(quote)) not in seen:
            seen.add((turn_seq, normalize(quote)))
            evidence.append({"turn_seq": turn_seq, "quote": quote})
    flags = []
    if dropped:
        flags.append(FLAG_QUOTE_DROPPED)
    score = model_score
    if not evidence and score > SCORE_LEVELS[0]:
        score = SCORE_LEVELS[0]
        flags.append(FLAG_NO_EVIDENCE_CAP)
    critique = str(parsed.get("critique", "")).strip()
    return CriterionOutcome(score, model_score, critique, evidence, dropped, flags, raw)


# --- The steps ----------------------------------------------------------------------------------


def report_claim(*, report_id: int) -> Report | None:
    """Takes the report for grading; None if it is done or another worker holds a live claim.

    The conditional update is what makes a redelivered or duplicated task grade nothing twice.
    """
    now = timezone.now()
    claimed = Report.objects.filter(
        Q(status=Report.Status.PENDING)
        | Q(status=Report.Status.FAILED)
        | Q(status=Report.Status.RUNNING, claimed_at__lt=now - CLAIM_EXPIRES_AFTER),
        pk=report_id,
    ).update(status=Report.Status.RUNNING, claimed_at=now, attempts=F("attempts") + 1, error="")
    if not claimed:
        return None
    return Report.objects.select_related("session__question").get(pk=report_id)


def _ensure_embeddings(session: InterviewSession, criteria: list[Criterion]) -> dict[int, str]:
    turns = list(session.turns.filter(role=Turn.Role.CANDIDATE).order_by("seq"))
    missing = [turn for turn in turns if turn.embedding is None]
    for turn, vector in zip(missing, embeddings.embed_many([t.content for t in missing]), strict=True):
        turn.embedding = vector
        turn.save(update_fields=["embedding"])
    unembedded = [c for c in criteria if c.embedding is None]
    for criterion, vector in zip(
        unembedded, embeddings.embed_many([c.embedding_text for c in unembedded]), strict=True
    ):
        criterion.embedding = vector
        criterion.save(update_fields=["embedding"])
    return {turn.seq: turn.content for turn in turns}


def _criterion_job(session: InterviewSession, criterion: Criterion) -> CriterionJob:
    retrieved = candidate_turns_for_vector(
        session_id=session.pk, vector=list(criterion.embedding), limit=TURNS_PER_CRITERION
    )
    options: list[EvidenceOption] = []
    for turn in retrieved:
        for sentence in evidence_sentences(turn.content):
            option = EvidenceOption(turn.seq, sentence)
            if option not in options and len(options) < MAX_EVIDENCE_OPTIONS:
                options.append(option)
    turns_text = "\n".join(
        f"[turn {turn.seq}] {turn.content[:MAX_TURN_CHARS]}"
        for turn in sorted(retrieved, key=lambda t: t.seq)
    )
    levels = {str(k): v for k, v in criterion.levels.items()}
    prompt = _prompt_template().format(
        title=session.question.title,
        criterion_title=criterion.title,
        criterion_description=criterion.description,
        level_1=levels["1"],
        level_2=levels["2"],
        level_3=levels["3"],
        level_4=levels["4"],
        reference_points="\n".join(f"- {point}" for point in criterion.reference_points),
        turns=turns_text or "(none)",
        options="\n".join(
            f"{number}. (turn {option.turn_seq}) {option.sentence}"
            for number, option in enumerate(options, start=1)
        )
        or "(none)",
    )
    return CriterionJob(criterion, [{"role": "user", "content": prompt}], options)


def criterion_score_save(*, report: Report, criterion: Criterion, outcome: CriterionOutcome) -> None:
    with transaction.atomic():
        _, created = CriterionScore.objects.get_or_create(
            report=report,
            criterion=criterion,
            defaults={
                "score": outcome.score,
                "model_score": outcome.model_score,
                "critique": outcome.critique,
                "evidence": outcome.evidence,
                "dropped_quotes": outcome.dropped,
                "flagged": bool(outcome.flags),
                "flag_reasons": outcome.flags,
                "raw_output": outcome.raw,
            },
        )
        if created:
            Report.objects.filter(pk=report.pk).update(criteria_done=F("criteria_done") + 1)


def report_complete(*, report: Report) -> Report:
    scores = list(report.scores.select_related("criterion"))
    total_weight = sum(s.criterion.weight for s in scores) or 1.0
    overall = sum(s.score * s.criterion.weight for s in scores) / total_weight
    report.overall_score = round(overall, 2)
    report.result = next(result for threshold, result in RESULT_THRESHOLDS if overall >= threshold)
    report.status = Report.Status.DONE
    report.completed_at = timezone.now()
    report.criteria_done = len(scores)
    report.save()
    return report


def _progress_frame(report: Report, done: int) -> dict[str, Any]:
    return {
        "type": realtime.REPORT_PROGRESS,
        "status": report.status,
        "done": done,
        "total": report.criteria_total,
    }


async def _grade_criterion(
    client: Any, job: CriterionJob, candidate_turns: dict[int, str]
) -> CriterionOutcome:
    failures = []
    for temperature in GRADING_ATTEMPTS:
        try:
            parsed, raw = await llm.complete_json(
                client,
                job.messages,
                name="criterion_grade",
                schema=criterion_schema(),
                max_tokens=GRADING_MAX_TOKENS,
                temperature=temperature,
            )
            return criterion_outcome_from_model(
                parsed=parsed, raw=raw, options=job.options, candidate_turns=candidate_turns
            )
        except llm.LLMUnusableOutput as error:
            failures.append(str(error))
            logger.warning("criterion %s: unusable output: %s", job.criterion.key, error)
    critique = "The grader could not produce a valid assessment of this criterion."
    return CriterionOutcome(
        SCORE_LEVELS[0], SCORE_LEVELS[0], critique, flags=[FLAG_MODEL_UNUSABLE], raw="\n---\n".join(failures)
    )


async def _score_all(*, report: Report, jobs: list[CriterionJob], candidate_turns: dict[int, str]) -> None:
    """Requests every criterion at once (vLLM batches them), saving and reporting each as it lands."""
    layer = channel_layers.make_backend("default")
    group = realtime.report_group(report.session_id)
    client = llm.async_client(timeout=settings.LLM_GRADING_TIMEOUT_SECONDS)
    limit = asyncio.Semaphore(settings.LLM_GRADING_CONCURRENCY)
    done = report.criteria_done

    async def score(job: CriterionJob) -> None:
        nonlocal done
        async with limit:
            if not candidate_turns:
                outcome = CriterionOutcome(SCORE_LEVELS[0], SCORE_LEVELS[0], CRITIQUE_SILENT)
            else:
                outcome = await _grade_criterion(client, job, candidate_turns)
        await database_sync_to_async(criterion_score_save)(
            report=report, criterion=job.criterion, outcome=outcome
        )
        done += 1
        await realtime.send_frame(layer, group, _progress_frame(report, done))

    try:
        await asyncio.gather(*(score(job) for job in jobs))
    finally:
        await client.close()
        await layer.close_pools()


def report_grade(*, report_id: int) -> Report | None:
    """Grades a finished session once. Safe to call again: scored criteria are kept, not redone."""
    report = report_claim(report_id=report_id)
    if report is None:
        return None
    session = report.session
    criteria = list(criteria_for_session(session=session))
    try:
        candidate_turns = _ensure_embeddings(session, criteria)
        report.criteria_total = len(criteria)
        report.model_name = settings.LLM_MODEL
        report.prompt_version = PROMPT_VERSION
        report.rubric_version = session.rubric_version
        report.save(update_fields=["criteria_total", "model_name", "prompt_version", "rubric_version"])
        realtime.publish(realtime.report_group(session.pk), _progress_frame(report, report.criteria_done))
        scored = set(report.scores.values_list("criterion_id", flat=True))
        jobs = [_criterion_job(session, c) for c in criteria if c.pk not in scored]
        asyncio.run(_score_all(report=report, jobs=jobs, candidate_turns=candidate_turns))
        report.refresh_from_db()
        report = report_complete(report=report)
    except Exception as error:
        Report.objects.filter(pk=report.pk).update(status=Report.Status.FAILED, error=str(error)[:2000])
        report.refresh_from_db()
        realtime.publish(
            realtime.report_group(session.pk),
            {**_progress_frame(report, report.criteria_done), "error": str(error)[:300]},
        )
        raise
    realtime.publish(realtime.report_group(session.pk), _progress_frame(report, report.criteria_done))
    logger.info("graded session %s: %s (%s)", session.pk, report.overall_score, report.result)
    return report


def reports_stalled(*, now=None) -> list[int]:  # type: ignore[no-untyped-def]
    """Reports whose grading never started or whose worker died: the sweeper re-enqueues them."""
    now = now or timezone.now()
    return list(
        Report.objects.filter(
            Q(status=Report.Status.PENDING, created_at__lt=now - timedelta(minutes=5))
            | Q(status=Report.Status.RUNNING, claimed_at__lt=now - CLAIM_EXPIRES_AFTER)
        ).values_list("pk", flat=True)
    )
