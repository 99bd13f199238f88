from __future__ import annotations

import asyncio
import logging

from celery import shared_task
from django.utils import timezone

from interview_platform import embeddings
from interviews import prompting, services, streaming
from interviews.models import Turn

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def interviewer_turn(candidate_turn_id: int) -> None:
    """Embeds the candidate's turn, then streams the interviewer's reply (queue `interviewer`)."""
    candidate_turn = Turn.objects.get(pk=candidate_turn_id)
    if candidate_turn.embedding is None:
        candidate_turn.embedding = embeddings.embed(candidate_turn.content)
        candidate_turn.save(update_fields=["embedding"])
    reply = services.interviewer_turn_begin(candidate_turn_id=candidate_turn_id)
    if reply is None:
        return
    session = reply.session
    messages = prompting.build_messages(session=session, reply=reply, now=timezone.now())
    asyncio.run(streaming.stream_reply(turn=reply, messages=messages))


@shared_task(ignore_result=True)
def sweep_expired_sessions() -> None:
    """Beat, every few seconds: the server's clock ends sessions whether or not a browser is there."""
    ended = services.session_finalize_expired()
    if ended:
        logger.info("ended expired sessions %s", ended)
    services.turn_fail_stale_streams()
