from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from grading.selectors import criteria_for_session
from interview_platform import errors, llm, realtime
from interviews import selectors, services
from interviews.models import InterviewSession, Question


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@login_required
def question_list(request: HttpRequest) -> HttpResponse:
    questions = selectors.question_list_published()
    sessions = selectors.session_list_for_candidate(user=request.user)[:20]
    return render(
        request,
        "interviews/question_list.html",
        {
            "classic": [q for q in questions if q.category == Question.Category.CLASSIC],
            "ml_systems": [q for q in questions if q.category == Question.Category.ML_SYSTEMS],
            "sessions": sessions,
            "model_ready": llm.server_ready(),
        },
    )


@login_required
def question_detail(request: HttpRequest, slug: str) -> HttpResponse:
    question = get_object_or_404(selectors.question_list_published(), slug=slug)
    return render(
        request, "interviews/question_detail.html", {"question": question, "model_ready": llm.server_ready()}
    )


@login_required
@require_POST
def session_start(request: HttpRequest, slug: str) -> HttpResponse:
    question = get_object_or_404(Question, slug=slug)
    try:
        session = services.session_start(candidate=request.user, question=question)
    except errors.ApplicationError as error:
        messages.error(request, error.message)
        return redirect("interviews:question_list")
    return redirect("interviews:room", session_id=session.pk)


def _session_for(request: HttpRequest, session_id: int) -> InterviewSession:
    session = InterviewSession.objects.select_related("question", "candidate").filter(pk=session_id).first()
    # 404, not 403: another candidate's session ids are not confirmed to exist.
    if session is None or not selectors.session_can_view(user=request.user, session=session):
        raise Http404("No such interview.")
    return session


@login_required
def room(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session_for(request, session_id)
    if not session.is_active and selectors.session_can_speak(user=request.user, session=session):
        return redirect("interviews:report", session_id=session.pk)
    return render(
        request,
        "interviews/room.html",
        {
            "session": session,
            "question": session.question,
            "can_speak": selectors.session_can_speak(user=request.user, session=session),
            "room_config": {
                "sessionId": session.pk,
                "wsPath": f"/ws/interviews/{session.pk}/",
                "reportUrl": f"/sessions/{session.pk}/report/",
                "frames": realtime.FRAME_TYPES,
                "canSpeak": selectors.session_can_speak(user=request.user, session=session),
                "maxChars": settings.INTERVIEW_MESSAGE_MAX_CHARS,
            },
        },
    )


@login_required
@require_POST
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    """The no-JavaScript way to end an interview early (the room uses the WebSocket)."""
    session = _session_for(request, session_id)
    if not selectors.session_can_speak(user=request.user, session=session):
        raise Http404("No such interview.")
    services.session_finalize(session_id=session.pk, reason=InterviewSession.EndReason.CANDIDATE)
    return redirect("interviews:report", session_id=session.pk)


@login_required
def report(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session_for(request, session_id)
    if session.is_active:
        if timezone.now() < session.deadline_at:
            return redirect("interviews:room", session_id=session.pk)
        services.session_finalize(session_id=session.pk, reason=InterviewSession.EndReason.TIME_UP)
        session.refresh_from_db()
    report = getattr(session, "report", None)
    scores = list(report.scores.select_related("criterion")) if report else []
    turns = list(session.turns.order_by("seq"))
    evidence_turns = {item["turn_seq"] for score in scores for item in score.evidence}
    return render(
        request,
        "interviews/report.html",
        {
            "session": session,
            "question": session.question,
            "report": report,
            "scores": scores,
            "criteria": list(criteria_for_session(session=session)),
            "turns": turns,
            "evidence_turns": evidence_turns,
            "report_config": {
                "wsPath": f"/ws/interviews/{session.pk}/report/",
                "frames": realtime.FRAME_TYPES,
                "done": bool(report and report.status == report.Status.DONE),
            },
        },
    )
