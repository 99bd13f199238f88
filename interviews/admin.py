from django.contrib import admin

from grading.models import Criterion
from interviews.models import InterviewSession, Question, Turn


class CriterionInline(admin.StackedInline):
    model = Criterion
    extra = 0
    fields = (
        "rubric_version",
        "position",
        "key",
        "title",
        "dimension",
        "weight",
        "description",
        "levels",
        "reference_points",
    )


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ("title", "category", "difficulty", "duration_minutes", "status", "rubric_version")
    list_filter = ("category", "difficulty", "status")
    search_fields = ("title", "slug", "prompt")
    prepopulated_fields = {"slug": ("title",)}
    inlines = [CriterionInline]


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    fields = ("seq", "role", "status", "content", "ttft_ms", "tokens_per_second", "completion_tokens")
    readonly_fields = fields
    can_delete = False


@admin.register(InterviewSession)
class InterviewSessionAdmin(admin.ModelAdmin):
    list_display = ("pk", "candidate", "question", "status", "started_at", "deadline_at", "end_reason")
    list_filter = ("status", "question")
    search_fields = ("candidate__username", "question__title")
    readonly_fields = ("phase_plan", "rubric_version", "started_at", "deadline_at", "ended_at", "last_seq")
    inlines = [TurnInline]
