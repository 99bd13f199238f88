from django.urls import path

from grading.consumers import ReportConsumer
from interviews.consumers import InterviewConsumer

websocket_urlpatterns = [
    path("ws/interviews/<int:session_id>/", InterviewConsumer.as_asgi()),
    path("ws/interviews/<int:session_id>/report/", ReportConsumer.as_asgi()),
]
