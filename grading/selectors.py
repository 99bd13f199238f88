from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from grading.models import Criterion, Report
from interviews.models import InterviewSession
from interviews.selectors import session_can_view


def criteria_for_session(*, session: InterviewSession) -> QuerySet[Criterion]:
    """The rubric the session was started with (its question at the session's rubric version)."""
    return Criterion.objects.filter(
        question_id=session.question_id, rubric_version=session.rubric_version
    ).order_by("position")


def report_for_user(*, user: AbstractBaseUser | AnonymousUser, session_id: int) -> Report | None:
    report = (
        Report.objects.select_related("session__question", "session__candidate")
        .filter(session_id=session_id)
        .first()
    )
    if report is None or not session_can_view(user=user, session=report.session):
        return None
    return report
