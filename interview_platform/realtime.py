"""Group names, frame types and the one helper that sends frames through the channel layer.

Channels groups are at-most-once and unordered across a group, so every frame that carries reply
text has a per-turn sequence number and the character offset it starts at; the browser dedups and
reorders by those, and resyncs from the database when it sees a gap.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import BaseChannelLayer, channel_layers

# Frame types, shared with static/js/room.js through the page's json_script.
SYNC = "sync"
TURN_ACK = "turn.ack"
TURN_STARTED = "turn.started"
TURN_DELTA = "turn.delta"
TURN_COMPLETED = "turn.completed"
TURN_FAILED = "turn.failed"
SESSION_ENDED = "session.ended"
REPORT_PROGRESS = "report.progress"
ERROR = "error"
# Client -> server.
CANDIDATE_MESSAGE = "candidate.message"
END_SESSION = "session.end"
RESYNC = "resync"

FRAME_TYPES = {
    "SYNC": SYNC,
    "TURN_ACK": TURN_ACK,
    "TURN_STARTED": TURN_STARTED,
    "TURN_DELTA": TURN_DELTA,
    "TURN_COMPLETED": TURN_COMPLETED,
    "TURN_FAILED": TURN_FAILED,
    "SESSION_ENDED": SESSION_ENDED,
    "REPORT_PROGRESS": REPORT_PROGRESS,
    "ERROR": ERROR,
    "CANDIDATE_MESSAGE": CANDIDATE_MESSAGE,
    "END_SESSION": END_SESSION,
    "RESYNC": RESYNC,
}

# The consumer method that forwards a frame to its socket (channels maps "frame.forward" to it).
FORWARD = "frame.forward"


# Close codes for a refused WebSocket, shared with the pages' JavaScript.
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403


async def refuse(consumer: Any, code: int) -> None:
    """Accept, then close with our code: a close before accept is a rejected handshake, which
    browsers see as 1006 and cannot tell from a network drop (they would retry forever)."""
    await consumer.accept()
    await consumer.close(code=code)


def session_group(session_id: int) -> str:
    return f"interview.{session_id}"


def report_group(session_id: int) -> str:
    return f"report.{session_id}"


async def send_frame(layer: BaseChannelLayer, group: str, frame: dict[str, Any]) -> None:
    await layer.group_send(group, {"type": FORWARD, "frame": frame})


async def _publish_once(group: str, frame: dict[str, Any]) -> None:
    # A fresh layer per call, closed before the loop ends: the shared layer caches connections
    # per event loop, and a loop that dies with them open leaks them (channels-redis 4).
    layer = channel_layers.make_backend("default")
    try:
        await send_frame(layer, group, frame)
    finally:
        await layer.close_pools()


def publish(group: str, frame: dict[str, Any]) -> None:
    """Send one frame from synchronous code (services called from tasks, views, the sweeper).

    Not for token streams: those run in one event loop with one layer (interviews.streaming).
    """
    asyncio.run(_publish_once(group, frame))
