"""The interview room's WebSocket: ws/interviews/<id>/.

Authentication is the session cookie (AuthMiddlewareStack) and the origin is checked
(AllowedHostsOriginValidator, in asgi.py). The candidate speaks; staff may watch read-only.
Every frame type is handled by one small method; the ORM is reached only through services and
selectors behind database_sync_to_async.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils import timezone

from interview_platform import errors, realtime
from interviews import selectors, services
from interviews.models import InterviewSession

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024


class InterviewConsumer(AsyncWebsocketConsumer):
    session_id: int
    group: str
    can_speak: bool
    _clock: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await realtime.refuse(self, realtime.CLOSE_UNAUTHORIZED)
            return
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        session = await self._load_session()
        if session is None or not selectors.session_can_view(user=user, session=session):
            await realtime.refuse(self, realtime.CLOSE_FORBIDDEN)
            return
        self.can_speak = selectors.session_can_speak(user=user, session=session)
        self.group = realtime.session_group(self.session_id)
        # Join before reading the transcript: anything sent after the read arrives as a frame,
        # anything before it is in the snapshot; the browser dedups the overlap by offset.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send_sync()
        if session.is_active:
            self._clock = asyncio.create_task(self._end_at_deadline(session.deadline_at))

    async def disconnect(self, code: int) -> None:
        if self._clock is not None:
            self._clock.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            await self._send_error("frame_invalid", errors.FRAME_INVALID)
            return
        try:
            frame = json.loads(text_data)
            frame_type = frame["type"]
        except (ValueError, KeyError, TypeError):
            await self._send_error("frame_invalid", errors.FRAME_INVALID)
            return
        handler = {
            realtime.CANDIDATE_MESSAGE: self._on_candidate_message,
            realtime.END_SESSION: self._on_end_session,
            realtime.RESYNC: self._on_resync,
        }.get(frame_type)
        if handler is None:
            await self._send_error("frame_unknown", errors.FRAME_UNKNOWN)
            return
        try:
            await handler(frame)
        except errors.ApplicationError as error:
            await self._send_error(error.code, error.message, client_id=frame.get("client_id"))

    async def frame_forward(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event["frame"]))

    # --- frame handlers ------------------------------------------------------------------------

    async def _on_candidate_message(self, frame: dict[str, Any]) -> None:
        if not self.can_speak:
            raise errors.ApplicationError("forbidden", "Observers cannot send messages.")
        text, client_id = frame.get("text"), frame.get("client_id", "")
        if not isinstance(text, str) or not isinstance(client_id, str):
            raise errors.ApplicationError("frame_invalid", errors.FRAME_INVALID)
        turn, created = await database_sync_to_async(services.turn_record_candidate)(
            session_id=self.session_id, candidate=self.scope["user"], text=text, client_id=client_id
        )
        # Stored and committed: only now is it acknowledged.
        await self.send(
            text_data=json.dumps(
                {
                    "type": realtime.TURN_ACK,
                    "client_id": client_id,
                    "created": created,
                    "turn": selectors.turn_as_frame(turn),
                }
            )
        )
        if created:
            # Other tabs and observers see the message too.
            await realtime.send_frame(
                self.channel_layer,
                self.group,
                {"type": realtime.TURN_COMPLETED, "turn": selectors.turn_as_frame(turn)},
            )

    async def _on_end_session(self, frame: dict[str, Any]) -> None:
        if not self.can_speak:
            raise errors.ApplicationError("forbidden", "Observers cannot end the interview.")
        await database_sync_to_async(services.session_finalize)(
            session_id=self.session_id, reason=InterviewSession.EndReason.CANDIDATE
        )

    async def _on_resync(self, frame: dict[str, Any]) -> None:
        await self._send_sync()

    # --- helpers -------------------------------------------------------------------------------

    async def _end_at_deadline(self, deadline_at: Any) -> None:
        delay = (deadline_at - timezone.now()).total_seconds()
        await asyncio.sleep(max(0.0, delay) + 0.2)
        try:
            await database_sync_to_async(services.session_finalize)(
                session_id=self.session_id, reason=InterviewSession.EndReason.TIME_UP
            )
        except Exception:  # the beat sweeper ends it within seconds anyway
            logger.exception("could not end session %s at its deadline", self.session_id)

    @database_sync_to_async
    def _load_session(self) -> InterviewSession | None:
        return InterviewSession.objects.filter(pk=self.session_id).first()

    async def _send_sync(self) -> None:
        frame = await database_sync_to_async(self._sync_frame)()
        await self.send(text_data=json.dumps(frame))

    def _sync_frame(self) -> dict[str, Any]:
        session = InterviewSession.objects.get(pk=self.session_id)
        return selectors.session_sync_frame(session=session, now=timezone.now())

    async def _send_error(self, code: str, message: str, client_id: str | None = None) -> None:
        await self.send(
            text_data=json.dumps(
                {"type": realtime.ERROR, "code": code, "message": message, "client_id": client_id}
            )
        )
