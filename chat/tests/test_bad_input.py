"""Bad input on the socket and the REST API gets BAD_REQUEST, ROOM_INVALID or 413, never a crash."""

import json
import re
import sys

import pytest
from django.test import Client

from chat.models import Message
from testkit.factories import bearer

pytestmark = pytest.mark.django_db(transaction=True)

HUGE = "9" * 5000  # past Python's 4,300-digit limit for int(str)
DEEP = "[" * 10000 + "]" * 10000


async def test_a_room_id_of_thousands_of_digits_is_room_invalid(connect, alice):
    """A numeric string room of 5,000 digits is out of range: ROOM_INVALID, with the ref."""
    sock = await connect(alice)
    for command in ("join", "leave", "history"):
        await sock.send({"command": command, "room": HUGE, "ref": command})
        reply = await sock.raw()
        assert (reply["error"], reply["ref"]) == ("ROOM_INVALID", command)
    await sock.send({"command": "send", "room": HUGE, "message": "hi", "ref": "s"})
    assert (await sock.raw())["error"] == "ROOM_INVALID"


async def test_since_and_before_of_thousands_of_digits_are_bad_request(connect, alice, room):
    """since/before as 5,000-digit strings are BAD_REQUEST; leading zeros still parse."""
    sock = await connect(alice)
    await sock.send({"command": "join", "room": room.pk, "since": HUGE, "ref": 1})
    reply = await sock.raw()
    assert (reply["error"], reply["ref"]) == ("BAD_REQUEST", 1)
    await sock.send({"command": "join", "room": "0" * 5000 + str(room.pk), "ref": 2})
    assert (await sock.recv())["join"] == room.pk
    await sock.send({"command": "history", "room": room.pk, "before": HUGE, "ref": 3})
    reply = await sock.recv()
    assert (reply["error"], reply["ref"]) == ("BAD_REQUEST", 3)


async def test_json_nested_ten_thousand_deep_is_bad_request(connect, alice):
    """A frame nested 10,000 deep, alone or inside a command, is BAD_REQUEST; the socket stays."""
    sock = await connect(alice)
    await sock.comm.send_to(text_data=DEEP)
    assert (await sock.raw())["error"] == "BAD_REQUEST"
    await sock.comm.send_to(text_data='{"command": "join", "room": ' + DEEP + ', "ref": 1}')
    assert (await sock.raw())["error"] == "BAD_REQUEST"
    await sock.send({"command": "join", "room": 0, "ref": "still open"})
    assert (await sock.raw())["ref"] == "still open"


def test_api_room_id_and_before_of_thousands_of_digits_are_404_and_400(alice, room):
    """REST: a 5,000-digit room id is 404 ROOM_INVALID, a 5,000-digit before is 4xx BAD_REQUEST."""
    client = bearer(alice)
    for response in (
        client.get(f"/api/rooms/{HUGE}/messages"),
        client.post(f"/api/rooms/{HUGE}/messages", '{"message": "x"}', "application/json"),
    ):
        assert (response.status_code, response.json()["error"]) == (404, "ROOM_INVALID")
    response = client.get(f"/api/rooms/{room.pk}/messages?before={HUGE}")
    assert response.status_code in (400, 422)
    assert response.json()["error"] == "BAD_REQUEST"
    response = client.get(f"/api/rooms/{room.pk}/messages?limit={HUGE}")
    assert response.json()["error"] == "BAD_REQUEST"


def test_api_body_nested_ten_thousand_deep_is_400(alice, room):
    """REST: a body nested 10,000 deep is 400 BAD_REQUEST and nothing is stored."""
    client = bearer(alice)
    for body in (DEEP, '{"message": ' + DEEP + "}"):
        response = client.post(f"/api/rooms/{room.pk}/messages", body, "application/json")
        assert (response.status_code, response.json()["error"]) == (400, "BAD_REQUEST")
    assert not Message.objects.exists()


def test_api_body_over_the_upload_limit_is_413(alice, room, settings):
    """REST: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413 MESSAGE_TOO_LONG naming both sizes."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps({"message": "x" * (limit + 10)})
    response = bearer(alice).post(f"/api/rooms/{room.pk}/messages", body, "application/json")
    assert response.status_code == 413
    assert response.json() == {
        "error": "MESSAGE_TOO_LONG",
        "detail": f"The request body has {len(body)} bytes; the limit is {limit}.",
    }
    assert not Message.objects.exists()


@pytest.mark.parametrize("flags", [0, re.ASCII], ids=["unicode", "ascii"])
def test_published_message_pattern_is_exactly_the_services_rule(flags):
    """For every character, the OpenAPI pattern says valid exactly when message_send accepts it."""
    schema = Client().get("/api/openapi.json").json()
    post = schema["paths"]["/api/rooms/{room_id}/messages"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    # Blank is allowed with files alone: the rule without files is the anyOf's first branch.
    rule = schema["components"]["schemas"][body]["anyOf"][0]
    pattern = rule["properties"]["message"]["pattern"]
    # A validator's `$` is the end of the string; \Z is that in Python.
    compiled = re.compile(pattern.removesuffix("$") + r"\Z", flags)
    disagree = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if not 0xD800 <= code <= 0xDFFF
        and bool(compiled.match(chr(code))) != (chr(code).strip() != "" and code != 0)
    ]
    assert disagree == []
    assert compiled.match("a\x00b") is None
    assert compiled.match(" \u3000x\n") is not None


def test_api_message_of_only_unicode_whitespace_is_400_and_byte_order_mark_is_stored(alice, room):
    """No-break spaces alone are blank (400); U+FEFF is not whitespace to Python (201)."""
    client = bearer(alice)
    url = f"/api/rooms/{room.pk}/messages"
    response = client.post(url, json.dumps({"message": "\xa0\u3000\x85"}), "application/json")
    assert (response.status_code, response.json()["error"]) == (400, "BAD_REQUEST")
    response = client.post(url, json.dumps({"message": "\ufeff"}), "application/json")
    assert response.status_code == 201
