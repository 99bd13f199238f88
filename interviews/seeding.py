"""The question bank, loaded from interviews/seed/questions/*.yaml: validated as a whole, idempotent.

Editing a question whose rubric was already used by a session makes a new rubric version, so the
sessions and reports made with the old one keep it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from grading.models import Criterion
from interview_platform import embeddings
from interviews.models import Question

SEED_DIR = Path(__file__).resolve().parent / "seed" / "questions"
CATEGORIES = {c.value for c in Question.Category}
DIFFICULTIES = {d.value for d in Question.Difficulty}
LEVEL_NAMES = {"junior", "mid", "senior", "staff"}
DIMENSIONS = {
    "requirements", "estimation", "api_data_model", "high_level_design", "scaling", "reliability",
    "tradeoffs", "communication", "ml_modeling", "ml_evaluation", "ml_serving", "ml_data",
}  # fmt: skip
MIN_CRITERIA = 6
QUESTION_FIELDS = (
    "title", "category", "difficulty", "target_levels", "tags", "duration_minutes", "prompt",
    "interviewer_focus", "phase_plan",
)  # fmt: skip
CRITERION_FIELDS = ("title", "dimension", "weight", "description", "levels", "reference_points")


class SeedError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _validate(data: Any, source: str) -> list[str]:
    if not isinstance(data, dict):
        return [f"{source}: the file must hold one question (a mapping)"]
    problems = []

    def bad(field: str, reason: str) -> None:
        problems.append(f"{source}: question {data.get('slug', '?')!r}, field {field}: {reason}")

    for field in ("slug", *QUESTION_FIELDS, "criteria"):
        if field not in data:
            bad(field, "missing")
    if problems:
        return problems
    if data["category"] not in CATEGORIES:
        bad("category", f"must be one of {sorted(CATEGORIES)}")
    if data["difficulty"] not in DIFFICULTIES:
        bad("difficulty", f"must be one of {sorted(DIFFICULTIES)}")
    if not set(data["target_levels"]) <= LEVEL_NAMES:
        bad("target_levels", f"must be a subset of {sorted(LEVEL_NAMES)}")
    plan = data["phase_plan"]
    if not isinstance(plan, list) or not plan:
        bad("phase_plan", "must be a non-empty list")
    else:
        keys = [phase.get("key") for phase in plan]
        if len(set(keys)) != len(keys):
            bad("phase_plan", "phase keys must be unique")
        for phase in plan:
            if not all(phase.get(k) for k in ("key", "title", "minutes", "goal")):
                bad("phase_plan", f"phase {phase.get('key')!r} needs key, title, minutes and goal")
        total = sum(int(phase.get("minutes") or 0) for phase in plan)
        if total != data["duration_minutes"]:
            bad("phase_plan", f"minutes sum to {total}, not duration_minutes {data['duration_minutes']}")
    criteria = data["criteria"]
    if not isinstance(criteria, list) or len(criteria) < MIN_CRITERIA:
        bad("criteria", f"at least {MIN_CRITERIA} are needed")
        return problems
    seen = set()
    for index, criterion in enumerate(criteria):
        key = criterion.get("key", f"#{index}")
        if key in seen:
            bad(f"criteria[{key}]", "duplicate key")
        seen.add(key)
        for field in ("key", *CRITERION_FIELDS):
            if field not in criterion:
                bad(f"criteria[{key}].{field}", "missing")
        if criterion.get("dimension") not in DIMENSIONS:
            bad(f"criteria[{key}].dimension", f"must be one of {sorted(DIMENSIONS)}")
        levels = criterion.get("levels") or {}
        if sorted(str(k) for k in levels) != ["1", "2", "3", "4"]:
            bad(f"criteria[{key}].levels", "must have exactly the levels 1, 2, 3 and 4")
        if not criterion.get("reference_points"):
            bad(f"criteria[{key}].reference_points", "at least one is needed")
    return problems


@dataclass
class SeedResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    new_rubric_versions: int = 0


def _criterion_values(raw: dict[str, Any], position: int) -> dict[str, Any]:
    values = {field: raw[field] for field in CRITERION_FIELDS}
    values["levels"] = {str(k): v for k, v in raw["levels"].items()}
    values["weight"] = float(values["weight"])
    values["position"] = position
    return values


def load_files(directory: Path = SEED_DIR) -> list[dict[str, Any]]:
    questions, problems = [], []
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            problems.append(f"{path.name}: not valid YAML: {error}")
            continue
        found = _validate(data, path.name)
        if not found and data["slug"] != path.stem:
            found = [f"{path.name}: question {data['slug']!r}, field slug: must match the file name"]
        problems += found
        questions.append(data)
    if problems:
        raise SeedError(problems)
    return questions


def _rubric_matches(question: Question, wanted: list[dict[str, Any]]) -> bool:
    current = {
        c.key: {field: getattr(c, field) for field in (*CRITERION_FIELDS, "position")}
        for c in question.criteria.filter(rubric_version=question.rubric_version)
    }
    return current == {w["key"]: {k: v for k, v in w.items() if k != "key"} for w in wanted}


@transaction.atomic
def seed_questions(questions: list[dict[str, Any]]) -> SeedResult:
    result = SeedResult()
    for data in questions:
        values = {field: data[field] for field in QUESTION_FIELDS}
        wanted = [
            {"key": raw["key"], **_criterion_values(raw, position)}
            for position, raw in enumerate(data["criteria"])
        ]
        question = Question.objects.filter(slug=data["slug"]).first()
        if question is None:
            question = Question.objects.create(slug=data["slug"], status=Question.Status.PUBLISHED, **values)
            result.created += 1
        else:
            changed = any(getattr(question, f) != v for f, v in values.items())
            if changed:
                Question.objects.filter(pk=question.pk).update(**values)
                question.refresh_from_db()
            if _rubric_matches(question, wanted):
                result.updated += changed
                result.unchanged += not changed
                continue
            result.updated += 1
            if question.sessions.filter(rubric_version=question.rubric_version).exists():
                question.rubric_version += 1
                question.save(update_fields=["rubric_version"])
                result.new_rubric_versions += 1
            else:
                question.criteria.filter(rubric_version=question.rubric_version).delete()
        Criterion.objects.bulk_create(
            Criterion(question=question, rubric_version=question.rubric_version, **w) for w in wanted
        )
    criterion_embed_missing()
    return result


def criterion_embed_missing() -> int:
    missing = list(Criterion.objects.filter(embedding__isnull=True))
    vectors = embeddings.embed_many([c.embedding_text for c in missing])
    for criterion, vector in zip(missing, vectors, strict=True):
        criterion.embedding = vector
    Criterion.objects.bulk_update(missing, ["embedding"])
    return len(missing)
