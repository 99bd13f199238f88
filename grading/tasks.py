from __future__ import annotations

from celery import shared_task

from grading import services
from interview_platform.llm import LLMError


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(LLMError,),
    retry_backoff=10,
    retry_backoff_max=120,
    max_retries=5,
)
def grade_session(report_id: int) -> None:
    """Queue `grading`. Retries on model-server failures; the claim makes duplicates no-ops."""
    services.report_grade(report_id=report_id)


@shared_task(ignore_result=True)
def sweep_stalled_reports() -> None:
    for report_id in services.reports_stalled():
        grade_session.delay(report_id)
