"""The room's WebSocket, through the real ASGI stack (cookie auth, origin check) and the real Redis
channel layer."""

from __future__ import annotations

from unittest import mock

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from interview_platform import errors, realtime
from interview_platform.asgi import application
from interviews import live
from interviews.models import InterviewSession, Turn
from tests.factories import InterviewSessionFactory, UserFactory, add_turn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connect(session_id: int, user=None, origin=ORIGIN):
    headers = [origin, (b"host", b"127.0.0.1:8000")]
    if user is not None:
        headers.append((b"cookie", await database_sync_to_async(cookie_for)(user)))
    communicator = WebsocketCommunicator(application, f"/ws/interviews/{session_id}/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def refusal_code(session_id: int, user=None, origin=ORIGIN) -> int | str:
    """How a connection is refused: our close code after accept, or "handshake" if never accepted."""
    communicator, connected, _ = await connect(session_id, user, origin)
    if not connected:
        return "handshake"
    first = await communicator.receive_output(timeout=5)
    assert first["type"] == "websocket.close", f"expected a refusal, got {first}"
    return first["code"]


@pytest.fixture
def enqueued():
    with mock.patch("interviews.tasks.interviewer_turn.delay") as delay:
        yield delay


@pytest.fixture
def session():
    session = InterviewSessionFactory()
    add_turn(session, Turn.Role.INTERVIEWER, "Welcome. What would you like to clarify?")
    return session


async def test_anonymous_users_are_refused_with_a_code_the_page_understands(session):
    assert await refusal_code(session.pk) == 4401


async def test_candidate_cannot_join_another_candidates_session(session):
    stranger = await database_sync_to_async(UserFactory)()
    assert await refusal_code(session.pk, stranger) == 4403


async def test_a_foreign_origin_is_refused(session):
    origin = (b"origin", b"http://evil.example")
    assert await refusal_code(session.pk, session.candidate, origin=origin) == "handshake"


async def test_the_first_frame_is_a_sync_with_the_clock_and_transcript(session):
    communicator, connected, _ = await connect(session.pk, session.candidate)
    assert connected
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["type"] == realtime.SYNC
    assert frame["session"]["deadline_at"] == session.deadline_at.timestamp() * 1000
    assert [t["content"] for t in frame["turns"]] == ["Welcome. What would you like to clarify?"]
    await communicator.disconnect()


async def test_a_message_is_stored_before_it_is_acknowledged_and_other_tabs_see_it(session, enqueued):
    tab, _, _ = await connect(session.pk, session.candidate)
    other_tab, _, _ = await connect(session.pk, session.candidate)
    await tab.receive_json_from(timeout=5)
    await other_tab.receive_json_from(timeout=5)
    await tab.send_json_to({"type": realtime.CANDIDATE_MESSAGE, "client_id": "m1", "text": "Who uses it?"})
    ack = await tab.receive_json_from(timeout=5)
    assert ack["type"] == realtime.TURN_ACK and ack["client_id"] == "m1" and ack["created"]
    stored = await database_sync_to_async(Turn.objects.get)(pk=ack["turn"]["id"])
    assert stored.content == "Who uses it?" and stored.seq == ack["turn"]["seq"] == 2
    enqueued.assert_called_once_with(stored.pk)
    seen = await other_tab.receive_json_from(timeout=5)
    assert seen["type"] == realtime.TURN_COMPLETED and seen["turn"]["id"] == stored.pk
    await tab.disconnect()
    await other_tab.disconnect()


async def test_an_invalid_message_gets_an_error_and_stores_nothing(session, enqueued):
    communicator, _, _ = await connect(session.pk, session.candidate)
    await communicator.receive_json_from(timeout=5)
    await communicator.send_to(text_data="not json")
    assert (await communicator.receive_json_from(timeout=5))["code"] == "frame_invalid"
    await communicator.send_json_to({"type": "shout"})
    assert (await communicator.receive_json_from(timeout=5))["message"] == errors.FRAME_UNKNOWN
    await communicator.send_json_to({"type": realtime.CANDIDATE_MESSAGE, "client_id": "e", "text": " "})
    error = await communicator.receive_json_from(timeout=5)
    assert error == {
        "type": realtime.ERROR,
        "code": "message_empty",
        "message": errors.MESSAGE_EMPTY,
        "client_id": "e",
    }
    assert await database_sync_to_async(session.turns.count)() == 1
    enqueued.assert_not_called()
    await communicator.disconnect()


async def test_staff_can_watch_but_not_speak(session, enqueued):
    staff = await database_sync_to_async(UserFactory)(is_staff=True)
    communicator, connected, _ = await connect(session.pk, staff)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == realtime.SYNC
    await communicator.send_json_to({"type": realtime.CANDIDATE_MESSAGE, "client_id": "x", "text": "hi"})
    assert (await communicator.receive_json_from(timeout=5))["code"] == "forbidden"
    enqueued.assert_not_called()
    await communicator.disconnect()


async def test_a_reconnect_mid_reply_gets_the_reply_so_far_from_the_live_snapshot(session):
    reply = await database_sync_to_async(add_turn)(
        session, Turn.Role.INTERVIEWER, "How many", status=Turn.Status.STREAMING
    )
    # The database has the last periodic save; Redis has every character sent so far.
    await database_sync_to_async(live._sync_client().set)(
        live.partial_key(reply.pk), "How many requests per second"
    )
    communicator, _, _ = await connect(session.pk, session.candidate)
    sync = await communicator.receive_json_from(timeout=5)
    streaming = next(t for t in sync["turns"] if t["id"] == reply.pk)
    assert streaming["content"] == "How many requests per second"
    assert streaming["status"] == Turn.Status.STREAMING
    await communicator.disconnect()


async def test_frames_sent_to_the_session_group_reach_the_socket(session):
    communicator, _, _ = await connect(session.pk, session.candidate)
    await communicator.receive_json_from(timeout=5)
    frame = {"type": realtime.TURN_DELTA, "turn_id": 9, "seq": 1, "offset": 0, "text": "Hi"}
    await database_sync_to_async(realtime.publish)(realtime.session_group(session.pk), frame)
    assert await communicator.receive_json_from(timeout=5) == frame
    await communicator.disconnect()


async def test_ending_the_interview_ends_the_session_and_tells_every_tab(session):
    communicator, _, _ = await connect(session.pk, session.candidate)
    await communicator.receive_json_from(timeout=5)
    with mock.patch("grading.tasks.grade_session.delay") as grade:
        await communicator.send_json_to({"type": realtime.END_SESSION})
        ended = await communicator.receive_json_from(timeout=5)
    assert ended["type"] == realtime.SESSION_ENDED and ended["reason"] == "candidate"
    refreshed = await database_sync_to_async(InterviewSession.objects.get)(pk=session.pk)
    assert refreshed.status == InterviewSession.Status.ENDED
    grade.assert_called_once()
    await communicator.disconnect()


async def test_the_clock_ends_the_session_at_the_deadline_while_connected(enqueued):
    from datetime import timedelta

    from django.utils import timezone

    started = timezone.now() - timedelta(minutes=30) + timedelta(seconds=1)
    session = await database_sync_to_async(InterviewSessionFactory)(
        started_at=started, deadline_at=started + timedelta(minutes=30)
    )
    communicator, _, _ = await connect(session.pk, session.candidate)
    assert (await communicator.receive_json_from(timeout=5))["type"] == realtime.SYNC
    with mock.patch("grading.tasks.grade_session.delay"):
        ended = await communicator.receive_json_from(timeout=5)
    assert ended["type"] == realtime.SESSION_ENDED and ended["reason"] == "time_up"
    await communicator.disconnect()


async def test_an_idle_channel_outlives_the_layers_blocking_wait():
    """A socket with nothing to receive must keep waiting, not die on a Redis read timeout."""
    import asyncio

    from channels.layers import channel_layers

    layer = channel_layers.make_backend("default")
    channel = await layer.new_channel()
    pool_timeout = layer.hosts[0]["socket_timeout"]
    assert pool_timeout > layer.brpop_timeout
    with pytest.raises(asyncio.TimeoutError):  # from wait_for: nothing arrived, nothing broke
        await asyncio.wait_for(layer.receive(channel), timeout=layer.brpop_timeout * 2 + 1)
    await layer.close_pools()
