from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from grading.models import Criterion
from interviews.models import InterviewSession, Question, Turn

SHORT_PLAN = [
    {"key": "requirements", "title": "Requirements", "minutes": 5, "goal": "Agree on scope."},
    {"key": "high_level_design", "title": "High-level design", "minutes": 10, "goal": "Sketch it."},
    {"key": "deep_dive", "title": "Deep dive", "minutes": 15, "goal": "Defend the hard parts."},
]


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("a-test-password-1")


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Question

    slug = factory.Sequence(lambda n: f"question-{n}")
    title = "Design a rate limiter"
    category = Question.Category.CLASSIC
    difficulty = Question.Difficulty.MID
    target_levels = ["mid"]
    tags = ["rate-limiting"]
    duration_minutes = 30
    prompt = "Design a rate limiter for a public HTTP API serving 2M requests per second."
    interviewer_focus = "Probe the algorithm choice and where the counters live."
    phase_plan = factory.LazyFunction(lambda: [dict(p) for p in SHORT_PLAN])
    status = Question.Status.PUBLISHED


class CriterionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Criterion

    question = factory.SubFactory(QuestionFactory)
    key = factory.Sequence(lambda n: f"criterion_{n}")
    title = "Algorithm choice"
    dimension = "high_level_design"
    description = "Chooses a rate-limiting algorithm and justifies it."
    weight = 1.0
    levels = factory.LazyFunction(
        lambda: {"1": "No algorithm.", "2": "Names one.", "3": "Justifies one.", "4": "Compares several."}
    )
    reference_points = factory.LazyFunction(lambda: ["token bucket", "sliding window counter"])
    position = factory.Sequence(lambda n: n)


class InterviewSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InterviewSession

    candidate = factory.SubFactory(UserFactory)
    question = factory.SubFactory(QuestionFactory)
    phase_plan = factory.LazyAttribute(lambda o: o.question.phase_plan)
    rubric_version = factory.LazyAttribute(lambda o: o.question.rubric_version)
    started_at = factory.LazyFunction(timezone.now)
    deadline_at = factory.LazyAttribute(lambda o: o.started_at + timedelta(minutes=30))


def add_turn(session: InterviewSession, role: str, content: str, **fields: object) -> Turn:
    """Appends a turn the way the services do (next sequence number under the session's counter)."""
    session.last_seq += 1
    InterviewSession.objects.filter(pk=session.pk).update(last_seq=session.last_seq)
    return Turn.objects.create(session=session, seq=session.last_seq, role=role, content=content, **fields)
