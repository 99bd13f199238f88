"""The one application error type. Codes are stable (the browser and tests key on them); messages are
module constants so tests reuse them instead of retyping them."""

from __future__ import annotations


class ApplicationError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


MESSAGE_EMPTY = "Your message is empty."
MESSAGE_TOO_LONG = "Your message is longer than {limit} characters; please split it."
MESSAGE_RATE_LIMITED = "You are sending messages too quickly; wait a few seconds and try again."
SESSION_NOT_ACTIVE = "This interview has ended; no more messages can be sent."
QUESTION_NOT_AVAILABLE = "This question is not available."
FRAME_INVALID = "The message could not be read."
FRAME_UNKNOWN = "Unknown message type."


def message_empty() -> ApplicationError:
    return ApplicationError("message_empty", MESSAGE_EMPTY)


def message_too_long(limit: int) -> ApplicationError:
    return ApplicationError("message_too_long", MESSAGE_TOO_LONG.format(limit=limit))


def message_rate_limited() -> ApplicationError:
    return ApplicationError("rate_limited", MESSAGE_RATE_LIMITED)


def session_not_active() -> ApplicationError:
    return ApplicationError("session_not_active", SESSION_NOT_ACTIVE)


def question_not_available() -> ApplicationError:
    return ApplicationError("question_not_available", QUESTION_NOT_AVAILABLE)
