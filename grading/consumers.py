"""ws/interviews/<id>/report/: grading progress for the report page, for whoever may see the report."""

from __future__ import annotations

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from grading.selectors import report_for_user
from interview_platform import realtime


class ReportConsumer(AsyncWebsocketConsumer):
    group: str

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await realtime.refuse(self, realtime.CLOSE_UNAUTHORIZED)
            return
        session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        report = await database_sync_to_async(report_for_user)(user=user, session_id=session_id)
        if report is None:
            await realtime.refuse(self, realtime.CLOSE_FORBIDDEN)
            return
        self.group = realtime.report_group(session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # The state as of now; later progress arrives as frames.
        await database_sync_to_async(report.refresh_from_db)()
        await self.send(
            text_data=json.dumps(
                {
                    "type": realtime.REPORT_PROGRESS,
                    "status": report.status,
                    "done": report.criteria_done,
                    "total": report.criteria_total,
                }
            )
        )

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page only listens."""

    async def frame_forward(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event["frame"]))
