from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from grading.models import Report
from interviews.models import InterviewSession, Question
from tests.factories import InterviewSessionFactory, QuestionFactory, UserFactory
from tests.fakes.scripted_llm import ScriptedLLM

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_model_status():
    cache.delete("llm:ready")


def test_pages_need_a_signed_in_user(client):
    response = client.get(reverse("interviews:question_list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_list_shows_published_questions_only_and_says_when_the_model_is_down(client, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    QuestionFactory(title="Design a URL shortener")
    QuestionFactory(title="Unfinished draft", status=Question.Status.DRAFT)
    client.force_login(UserFactory())
    page = client.get(reverse("interviews:question_list")).content.decode()
    assert "Design a URL shortener" in page and "Unfinished draft" not in page
    assert "The interviewer model is not answering yet" in page
    assert "No interviews yet" in page


def test_no_model_banner_when_the_model_server_answers(client, settings):
    with ScriptedLLM() as server:
        settings.LLM_BASE_URL = server.base_url
        client.force_login(UserFactory())
        page = client.get(reverse("interviews:question_list")).content.decode()
    assert "The interviewer model is not answering yet" not in page


def test_starting_an_interview_opens_the_room(client):
    question = QuestionFactory()
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("interviews:session_start", args=[question.slug]))
    session = InterviewSession.objects.get(candidate=user)
    assert response["Location"] == reverse("interviews:room", args=[session.pk])
    room = client.get(response["Location"]).content.decode()
    assert question.prompt in room and 'id="room-config"' in room


def test_a_candidate_cannot_open_another_candidates_room_or_report(client):
    session = InterviewSessionFactory()
    client.force_login(UserFactory())
    assert client.get(reverse("interviews:room", args=[session.pk])).status_code == 404
    assert client.get(reverse("interviews:report", args=[session.pk])).status_code == 404


def test_the_report_page_shows_grading_progress_until_the_report_is_done(client):
    session = InterviewSessionFactory(status=InterviewSession.Status.ENDED)
    Report.objects.create(session=session, status=Report.Status.RUNNING, criteria_total=7, criteria_done=3)
    client.force_login(session.candidate)
    page = client.get(reverse("interviews:report", args=[session.pk])).content.decode()
    assert "Grading 3 of" in page and 'id="grading-progress"' in page
