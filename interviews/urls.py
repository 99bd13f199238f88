from django.urls import path

from interviews import views

app_name = "interviews"
urlpatterns = [
    path("", views.question_list, name="question_list"),
    path("questions/<slug:slug>/", views.question_detail, name="question_detail"),
    path("questions/<slug:slug>/start/", views.session_start, name="session_start"),
    path("sessions/<int:session_id>/", views.room, name="room"),
    path("sessions/<int:session_id>/end/", views.session_end, name="session_end"),
    path("sessions/<int:session_id>/report/", views.report, name="report"),
]
