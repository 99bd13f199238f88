from django.contrib import admin

from grading.models import CriterionScore, Report


class CriterionScoreInline(admin.TabularInline):
    model = CriterionScore
    extra = 0
    fields = ("criterion", "score", "model_score", "flagged", "dropped_quotes", "critique", "evidence")
    readonly_fields = fields
    can_delete = False


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = (
        "session",
        "status",
        "overall_score",
        "result",
        "model_name",
        "prompt_version",
        "rubric_version",
    )
    list_filter = ("status", "result")
    readonly_fields = ("session", "claimed_at", "attempts", "criteria_total", "criteria_done", "completed_at")
    inlines = [CriterionScoreInline]
