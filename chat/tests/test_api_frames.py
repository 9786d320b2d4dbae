"""The REST API's bodies are the socket's frames: one declaration (chat.protocol), two forms.

The OpenAPI components are the msgspec Structs' JSON Schemas, REST answers
are those frames byte for byte, and a posted body is checked as the socket's
``send`` is, with the same error codes.
"""

import json

import jsonschema_rs
import msgspec
import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient, Client

from api import services as token_services
from chat import protocol
from chat.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

REF = "#/components/schemas/{name}"
PUBLISHED = [protocol.NewMessage, protocol.MessageEvent, protocol.HistoryReply, protocol.ErrorFrame]


def bearer(user) -> Client:
    """A test client that sends a fresh token of ``user`` as ``Authorization: Bearer``."""
    _, plaintext = token_services.token_create(user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {plaintext}"})


def post(client: Client, room_id: int, body) -> object:
    """POST a JSON body to a room's messages."""
    return client.post(
        f"/api/rooms/{room_id}/messages", json.dumps(body), content_type="application/json"
    )


def generated(structs: list[type[msgspec.Struct]]) -> dict:
    """The components msgspec generates for ``structs`` (and the types they use)."""
    return msgspec.json.schema_components(structs, ref_template=REF)[1]


def validator(struct: type[msgspec.Struct]) -> jsonschema_rs.Validator:
    """A JSON Schema validator for the component generated from ``struct``."""
    components = {"schemas": generated([struct])}
    root = {"$ref": REF.format(name=struct.__name__), "components": components}
    return jsonschema_rs.validator_for(root)


def ref(answer: dict) -> str:
    """The component name a request body or response documents its JSON content with."""
    return answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]


def test_the_openapi_components_are_the_structs_json_schemas(settings):
    """Each published frame's component is exactly its Struct's schema (the limit is live)."""
    settings.CHAT_MESSAGE_MAX_LENGTH = 123
    served = Client().get("/api/openapi.json").json()["components"]["schemas"]
    expected = generated(PUBLISHED)
    expected["NewMessage"]["properties"]["message"]["maxLength"] = 123
    expected["NewMessage"]["anyOf"] = served["NewMessage"]["anyOf"]  # blank only with files
    expected["NewMessage"]["properties"]["files"]["maxItems"] = 10  # CHAT_UPLOAD_MAX_FILES
    used = {"ErrorCode", "ReactionSummary", "FileInfo"}
    assert set(expected) == {*(s.__name__ for s in PUBLISHED), *used}
    assert {name: served[name] for name in expected} == expected


def test_every_operation_documents_its_bodies_with_the_frames():
    """A post takes NewMessage, answers MessageEvent; history is HistoryReply; errors ErrorFrame."""
    paths = Client().get("/api/openapi.json").json()["paths"]
    messages = paths["/api/rooms/{room_id}/messages"]
    assert ref(messages["post"]["requestBody"]) == "NewMessage"
    assert ref(messages["post"]["responses"]["201"]) == "MessageEvent"
    assert ref(messages["get"]["responses"]["200"]) == "HistoryReply"
    errors = {
        ref(answer)
        for operations in paths.values()
        for operation in operations.values()
        for status, answer in operation["responses"].items()
        if int(status) >= 400
    }
    assert errors == {"ErrorFrame"}


def test_send_and_the_rest_body_declare_the_same_message_fields():
    """The socket's ``send`` and the REST body share the message fields and their rules."""
    components = generated([protocol.Send, protocol.NewMessage])
    send, body = components["Send"], components["NewMessage"]
    fields = ("message", "msg_type", "reply_to", "files")
    assert body["properties"] == {k: send["properties"][k] for k in fields}
    assert body["required"] == ["message"]
    assert "message" in send["required"]
    assert body["additionalProperties"] is send["additionalProperties"] is False


def test_rest_answers_are_the_frames_byte_for_byte(alice, room, staff_room, settings):
    """Each answer decodes strictly as its Struct, re-encodes to the same bytes, and validates."""
    settings.CHAT_SEND_RATE = 0.01
    settings.CHAT_SEND_BURST = 2
    client = bearer(alice)
    answers = [
        (post(client, room.pk, {"message": "hi"}), 201, protocol.MessageEvent),
        (client.get(f"/api/rooms/{room.pk}/messages"), 200, protocol.HistoryReply),
        (post(client, staff_room.pk, {"message": "hi"}), 403, protocol.ErrorFrame),
        (post(client, room.pk, {"message": 5}), 422, protocol.ErrorFrame),
        (post(client, 0, {"message": "hi"}), 404, protocol.ErrorFrame),
        (post(client, room.pk, {"message": "one too many"}), 429, protocol.ErrorFrame),
        (Client().get("/api/me"), 401, protocol.ErrorFrame),
    ]
    for response, status, struct in answers:
        assert response.status_code == status, response.content
        frame = msgspec.json.decode(response.content, type=struct)
        assert protocol.encode(frame).encode() == response.content
        validator(struct).validate(response.json())
    assert "retry_after" in answers[-2][0].json()  # the optional fields are covered too
    assert len(answers[1][0].json()["messages"]) == 1


def test_the_component_validators_can_refuse():
    """The validators above are not vacuous: a frame missing a field or mistyped is refused."""
    stored = {"msg_type": 0, "room": 1, "username": "a", "message": "m", "seq": 1, "ts": "t"}
    assert validator(protocol.MessageEvent).is_valid(stored)
    assert not validator(protocol.MessageEvent).is_valid({**stored, "ts": None})
    assert not validator(protocol.ErrorFrame).is_valid({"error": "NOT_A_CODE", "detail": "x"})
    assert not validator(protocol.ErrorFrame).is_valid({"error": "BAD_REQUEST"})


BODIES = [
    ({"message": 5}, "BAD_REQUEST"),
    ({}, "BAD_REQUEST"),
    ({"message": "hi", "msg_type": "1"}, "BAD_REQUEST"),
    ({"message": "hi", "msg_type": True}, "BAD_REQUEST"),
    ({"message": "hi", "colour": "red"}, "BAD_REQUEST"),
    ({"message": "   "}, "BAD_REQUEST"),
    ({"message": "a\x00b"}, "BAD_REQUEST"),
    ({"message": "hi", "msg_type": 4}, "BAD_REQUEST"),
    ({"message": "hi", "msg_type": 1}, "ROOM_ACCESS_DENIED"),
    ({"message": "x" * 11}, "MESSAGE_TOO_LONG"),
]


async def test_a_post_is_refused_with_the_code_the_socket_gives_its_send(
    connect, alice, room, settings
):
    """The same fields, sent over the socket and posted over REST, get the same error code."""
    settings.CHAT_MESSAGE_MAX_LENGTH = 10
    sock = await connect(alice)
    await sock.join(room.pk)
    _, plaintext = await database_sync_to_async(token_services.token_create)(user=alice, name="t")
    headers = {"Authorization": f"Bearer {plaintext}"}
    for i, (body, code) in enumerate(BODIES):
        await sock.send({"command": "send", "room": room.pk, "ref": i, **body})
        reply = await sock.recv()
        response = await AsyncClient().post(
            f"/api/rooms/{room.pk}/messages",
            json.dumps(body),
            content_type="application/json",
            headers=headers,
        )
        assert (reply["ref"], reply["error"], response.json()["error"]) == (i, code, code)
    assert not await database_sync_to_async(Message.objects.exists)()
