from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from pgvector.django import HnswIndex, VectorField


class Question(models.Model):
    class Category(models.TextChoices):
        CLASSIC = "classic", "Classic system design"
        ML_SYSTEMS = "ml_systems", "ML systems"

    class Difficulty(models.TextChoices):
        JUNIOR = "junior", "Junior"
        MID = "mid", "Mid"
        SENIOR = "senior", "Senior"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    category = models.CharField(max_length=20, choices=Category.choices)
    difficulty = models.CharField(max_length=10, choices=Difficulty.choices)
    target_levels = models.JSONField(default=list)
    tags = models.JSONField(default=list)
    duration_minutes = models.PositiveSmallIntegerField()
    prompt = models.TextField(help_text="The problem statement as the candidate sees it.")
    interviewer_focus = models.TextField(help_text="What the AI interviewer probes; never shown.")
    # [{"key", "title", "minutes", "goal"}], minutes summing to duration_minutes.
    phase_plan = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    rubric_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "title"]

    def __str__(self) -> str:
        return self.title


class InterviewSession(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "In progress"
        ENDED = "ended", "Ended"

    class EndReason(models.TextChoices):
        TIME_UP = "time_up", "Time ran out"
        CANDIDATE = "candidate", "Ended by the candidate"

    candidate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="interview_sessions"
    )
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="sessions")
    # Copied at start, so a later edit of the question never changes a running or past session.
    phase_plan = models.JSONField()
    rubric_version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    started_at = models.DateTimeField()
    deadline_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # The last transcript sequence number handed out; turns take seq = last_seq + 1 under a row lock.
    last_seq = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(
                fields=["deadline_at"],
                name="session_active_deadline",
                condition=Q(status="active"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.candidate} - {self.question} ({self.started_at:%Y-%m-%d %H:%M})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Turn(models.Model):
    class Role(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        INTERVIEWER = "interviewer", "Interviewer"

    class Status(models.TextChoices):
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    session = models.ForeignKey(InterviewSession, on_delete=models.CASCADE, related_name="turns")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=12, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETE)
    # Set by the browser for candidate turns, so a resend after a dropped socket is not stored twice.
    client_id = models.CharField(max_length=64, blank=True)
    # The candidate turn an interviewer turn replies to.
    reply_to = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reply"
    )
    phase_key = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Interviewer turns: what produced them and how fast.
    model_name = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=40, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)
    # Candidate turns: embedded for rubric coverage and grading retrieval.
    embedding = VectorField(dimensions=384, null=True, blank=True)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="turn_unique_seq"),
            models.UniqueConstraint(
                fields=["session", "client_id"],
                condition=~Q(client_id=""),
                name="turn_unique_client_id",
            ),
        ]
        indexes = [
            HnswIndex(
                name="turn_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            )
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.role}"
