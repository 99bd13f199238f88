from __future__ import annotations

from django.db import models
from pgvector.django import HnswIndex, VectorField

from interviews.models import InterviewSession, Question

SCORE_LEVELS = (1, 2, 3, 4)


class Criterion(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="criteria")
    rubric_version = models.PositiveIntegerField(default=1)
    key = models.SlugField(max_length=60)
    title = models.CharField(max_length=200)
    dimension = models.CharField(max_length=40)
    description = models.TextField()
    weight = models.FloatField(default=1.0)
    # {"1": "...", "2": "...", "3": "...", "4": "..."}
    levels = models.JSONField()
    reference_points = models.JSONField(default=list)
    position = models.PositiveSmallIntegerField(default=0)
    embedding = VectorField(dimensions=384, null=True, blank=True)

    class Meta:
        ordering = ["question", "position"]
        constraints = [
            models.UniqueConstraint(fields=["question", "rubric_version", "key"], name="criterion_unique_key")
        ]
        indexes = [
            HnswIndex(
                name="criterion_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def embedding_text(self) -> str:
        points = "; ".join(self.reference_points)
        return f"{self.title}. {self.description} {points}"


class Report(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a grader"
        RUNNING = "running", "Grading"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Result(models.TextChoices):
        STRONG = "strong", "Strong performance"
        MIXED = "mixed", "Mixed performance"
        WEAK = "weak", "Needs more practice"

    # One report per session: the constraint is what makes grading happen exactly once.
    session = models.OneToOneField(InterviewSession, on_delete=models.CASCADE, related_name="report")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    criteria_total = models.PositiveSmallIntegerField(default=0)
    criteria_done = models.PositiveSmallIntegerField(default=0)
    overall_score = models.FloatField(null=True, blank=True)
    result = models.CharField(max_length=10, choices=Result.choices, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=40, blank=True)
    rubric_version = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Report for session {self.session_id}"


class CriterionScore(models.Model):
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="scores")
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="scores")
    score = models.PositiveSmallIntegerField()
    critique = models.TextField()
    # [{"turn_seq": 3, "quote": "..."}], only quotes found verbatim in that candidate turn.
    evidence = models.JSONField(default=list)
    dropped_quotes = models.PositiveSmallIntegerField(default=0)
    flagged = models.BooleanField(default=False)
    flag_reasons = models.JSONField(default=list)
    model_score = models.PositiveSmallIntegerField(help_text="The score the model gave, before floors")
    raw_output = models.TextField()

    class Meta:
        ordering = ["criterion__position"]
        constraints = [models.UniqueConstraint(fields=["report", "criterion"], name="score_unique_criterion")]

    def __str__(self) -> str:
        return f"{self.criterion}: {self.score}"
