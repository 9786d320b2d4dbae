"""The Django admin: rooms (add, edit, delete, broadcast) and stored messages."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import services
from chat.models import Message, MsgType, Room

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client_(make_user):
    """A client logged in as a superuser."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(user)
    return client


def test_admin_adds_edits_and_deletes_a_room(admin_client_):
    """A room can be added, renamed, made staff-only and deleted from the admin."""
    response = admin_client_.post(
        "/admin/chat/room/add/", {"title": "Lobby", "staff_only": ""}, follow=True
    )
    assert response.status_code == 200
    room = Room.objects.get(title="Lobby")
    assert room.staff_only is False

    admin_client_.post(f"/admin/chat/room/{room.pk}/change/", {"title": "Hall", "staff_only": "on"})
    room.refresh_from_db()
    assert (room.title, room.staff_only) == ("Hall", True)

    admin_client_.post(f"/admin/chat/room/{room.pk}/delete/", {"post": "yes"})
    assert not Room.objects.filter(pk=room.pk).exists()


def test_admin_room_list_is_searchable(admin_client_):
    """The room list searches titles."""
    Room.objects.create(title="Kitchen")
    Room.objects.create(title="Garden")
    body = admin_client_.get("/admin/chat/room/", {"q": "kitch"}).content.decode()
    assert "Kitchen" in body
    assert "Garden" not in body


def test_non_staff_user_cannot_use_the_admin(alice):
    """The admin is for staff: others are sent to its login page."""
    client = Client()
    client.force_login(alice)
    response = client.get("/admin/chat/room/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


async def test_broadcast_action_posts_an_alert_to_the_selected_rooms(connect, alice, make_user):
    """Staff post an alert to several rooms at once; members see it live, and it is stored."""
    first = await Room.objects.acreate(title="One")
    second = await Room.objects.acreate(title="Two")
    untouched = await Room.objects.acreate(title="Three")
    sock = await connect(alice)
    await sock.join(first.pk)

    def run_action():
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_superuser("boss", password="pw-boss-123")
        client = Client()
        client.force_login(user)
        form_page = client.post(
            "/admin/chat/room/",
            {"action": "broadcast", "_selected_action": [first.pk, second.pk]},
        )
        assert b"Post to 2 rooms" in form_page.content
        return client.post(
            "/admin/chat/room/",
            {
                "action": "broadcast",
                "_selected_action": [first.pk, second.pk],
                "apply": "Post",
                "msg_type": MsgType.ALERT,
                "text": "Server restarts at noon",
            },
        )

    response = await database_sync_to_async(run_action)()
    assert response.status_code == 302
    frame = await sock.recv()
    assert (frame["msg_type"], frame["message"], frame["username"]) == (
        2,
        "Server restarts at noon",
        "boss",
    )
    stored = [m async for m in Message.objects.order_by("room_id").values_list("room_id", "text")]
    assert stored == [(first.pk, "Server restarts at noon"), (second.pk, "Server restarts at noon")]
    assert not await Message.objects.filter(room=untouched).aexists()


def test_broadcast_action_rejects_an_empty_message(admin_client_):
    """The broadcast form asks again when the text is missing; nothing is posted."""
    room = Room.objects.create(title="One")
    response = admin_client_.post(
        "/admin/chat/room/",
        {"action": "broadcast", "_selected_action": [room.pk], "apply": "Post", "msg_type": 1},
    )
    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert not Message.objects.exists()


def test_message_admin_filters_by_room_and_author_and_searches_text(admin_client_, alice, bob):
    """Messages are listed, filtered by room and author, and searchable by text."""
    one = Room.objects.create(title="One")
    two = Room.objects.create(title="Two")
    services.message_send(user=alice, room_id=one.pk, text="apples from alice")
    services.message_send(user=bob, room_id=one.pk, text="bananas from bob")
    services.message_send(user=bob, room_id=two.pk, text="cherries in two")

    def listed(**params) -> str:
        return admin_client_.get("/admin/chat/message/", params).content.decode()

    assert "apples" in listed() and "cherries" in listed()
    by_room = listed(room__id__exact=two.pk)
    assert "cherries" in by_room and "apples" not in by_room
    by_author = listed(author__id__exact=bob.pk)
    assert "bananas" in by_author and "apples" not in by_author
    searched = listed(q="banana")
    assert "bananas" in searched and "cherries" not in searched


async def test_deleting_a_message_in_the_admin_removes_it_for_connected_clients(connect, alice):
    """Staff delete a message in the admin; members get the delete change, in the stream."""
    room = await Room.objects.acreate(title="One")
    message = await database_sync_to_async(services.message_send)(
        user=alice, room_id=room.pk, text="oops"
    )
    sock = await connect(alice)
    await sock.join(room.pk)

    def delete_in_admin():
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_superuser("root", password="pw-root-123")
        client = Client()
        client.force_login(user)
        return client.post(f"/admin/chat/message/{message.pk}/delete/", {"post": "yes"})

    assert (await database_sync_to_async(delete_in_admin)()).status_code == 302
    change = await sock.recv()
    assert (change["change"], change["target"], change["seq"], change["username"]) == (
        "delete",
        1,
        2,  # the change's own place in the room's stream
        "root",
    )
    await message.arefresh_from_db()
    assert (message.deleted, message.text) == (True, "")


def test_messages_cannot_be_added_or_edited_in_the_admin(admin_client_, alice):
    """Messages are posted in rooms, not typed into the admin; stored ones are read-only."""
    room = Room.objects.create(title="One")
    message = services.message_send(user=alice, room_id=room.pk, text="as sent")
    assert admin_client_.get("/admin/chat/message/add/").status_code == 403
    admin_client_.post(f"/admin/chat/message/{message.pk}/change/", {"text": "forged"})
    message.refresh_from_db()
    assert message.text == "as sent"


def test_message_admin_type_filter_offers_only_stored_types(admin_client_, alice, staff):
    """The type filter lists message, warning, alert, muted (never enter/leave) and filters."""
    room = Room.objects.create(title="Typed")
    services.message_send(user=alice, room_id=room.pk, text="plain words")
    services.message_send(user=staff, room_id=room.pk, text="careful now", msg_type=MsgType.WARNING)
    page = admin_client_.get("/admin/chat/message/")
    changelist = page.context["cl"]
    (by_type,) = [spec for spec in changelist.filter_specs if spec.title == "type"]
    choices = [choice["display"] for choice in by_type.choices(changelist)]
    assert choices == ["All", "message", "warning", "alert", "muted"]
    warnings = admin_client_.get("/admin/chat/message/", {"msg_type__exact": MsgType.WARNING})
    listed = warnings.content.decode()
    assert "careful now" in listed and "plain words" not in listed
