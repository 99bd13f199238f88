import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "interview_platform.settings")

app = Celery("interview_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_ready.connect
def _load_embedding_model(**_: object) -> None:
    """Load the embedding model when a worker starts, not inside the first candidate's reply (~8 s)."""
    import threading

    from interview_platform import embeddings

    threading.Thread(target=embeddings.embed, args=("warm-up",), daemon=True).start()
