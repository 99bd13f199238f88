"""The platform package: settings, routing, the Celery app and the services the apps share.

Named ``interview_platform`` rather than ``platform`` because a top-level ``platform`` package
would shadow the standard-library module that uuid, Celery and the OpenAI client import.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
