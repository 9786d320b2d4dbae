"""Full-text search (chat.search): words, phrases, exclusion, filters, paging, access, bad input.

Runs on both databases: the SQLite pass tests FTS5 and its triggers, the
PostgreSQL pass the generated tsvector column and websearch_to_tsquery.
"""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chat import rooms, search, services
from chat.errors import ChatError
from chat.models import Message
from testkit.factories import bearer

pytestmark = pytest.mark.django_db(transaction=True)


def post(room, user, *texts):
    """Store ``texts`` in ``room`` as ``user`` through the one posting function."""
    return [services.room_post(room_id=room.pk, user=user, text=t) for t in texts]


def found(user, query, **filters):
    """The texts a search finds, newest first (one page)."""
    return [r.message for r in search.search(user=user, query=query, **filters).results]


def refused(user, query, **filters) -> str:
    """The error code a search answers with."""
    with pytest.raises(ChatError) as error:
        search.search(user=user, query=query, **filters)
    return error.value.code


@pytest.fixture(autouse=True)
def no_history_limit(settings):
    settings.CHAT_HISTORY_RATE = 0


def test_finds_words_newest_first_and_all_words_must_occur(alice, room):
    """Every word must occur, in any case; results come newest first."""
    post(room, alice, "The red fox", "a blue fox", "red wine", "FOX and Red together")
    assert found(alice, "fox") == ["FOX and Red together", "a blue fox", "The red fox"]
    assert found(alice, "red fox") == ["FOX and Red together", "The red fox"]
    assert found(alice, "giraffe") == []


def test_phrase_needs_the_words_in_order(alice, room):
    """A quoted phrase finds the words side by side, in that order."""
    post(room, alice, "red fox jumps", "fox red jumps", "red big fox")
    assert found(alice, '"red fox"') == ["red fox jumps"]


def test_minus_excludes_and_or_widens(alice, room):
    """``-word`` leaves out messages with it; ``or`` finds either."""
    post(room, alice, "apple pie", "apple juice", "cherry pie")
    assert found(alice, "apple -juice") == ["apple pie"]
    assert found(alice, "juice or cherry") == ["cherry pie", "apple juice"]


def test_words_in_any_language_are_found_as_written(alice, room):
    """The configuration stems nothing and drops no 'stop word': German, Greek, Cyrillic."""
    post(room, alice, "Grüße aus München", "Καλημέρα κόσμε", "привет мир", "the and of")
    assert found(alice, "münchen") == ["Grüße aus München"]
    assert found(alice, "κόσμε") == ["Καλημέρα κόσμε"]
    assert found(alice, "Привет") == ["привет мир"]
    assert found(alice, "the") == ["the and of"]


def test_never_a_message_from_a_staff_only_room_for_non_staff(alice, staff, room, staff_room):
    """Non-staff never find staff-room messages, with or without a room filter; staff do."""
    post(room, alice, "secret plans are public here")
    post(staff_room, staff, "secret plans for staff")
    assert found(alice, "secret") == ["secret plans are public here"]
    assert refused(alice, "secret", room=staff_room.pk) == "ROOM_ACCESS_DENIED"
    assert found(staff, "secret") == ["secret plans for staff", "secret plans are public here"]
    assert found(staff, "secret", room=staff_room.pk) == ["secret plans for staff"]


def test_filters_by_room_author_and_dates(alice, bob, room):
    """Room, author and date range each narrow the results."""
    from chat.models import Room

    other = Room.objects.create(title="Other")
    old, _ = post(room, alice, "deploy old", "deploy new")
    post(other, bob, "deploy elsewhere")
    Message.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=10))
    assert found(alice, "deploy", room=other.pk) == ["deploy elsewhere"]
    assert found(alice, "deploy", author="alice") == ["deploy new", "deploy old"]
    week_ago = (timezone.now() - timedelta(days=7)).date().isoformat()
    assert "deploy old" not in found(alice, "deploy", after=week_ago)
    assert found(alice, "deploy", before=week_ago) == ["deploy old"]
    iso = (timezone.now() - timedelta(days=1)).isoformat()
    assert found(alice, "deploy", author="alice", after=iso) == ["deploy new"]


def test_result_has_the_message_fields_room_title_and_snippet(alice, room):
    """A result carries room, title, seq, author, time, text and a <mark>ed snippet."""
    (message,) = post(room, alice, "Meet at the harbour at noon")
    (result,) = search.search(user=alice, query="harbour").results
    assert (result.room, result.title, result.seq) == (room.pk, "General", message.seq)
    assert result.username == "alice" and result.message == "Meet at the harbour at noon"
    assert "<mark>harbour</mark>" in result.snippet
    assert result.ts.endswith("Z")


def test_snippet_escapes_the_text_and_adds_only_mark_tags(alice, room):
    """User markup in a match comes back escaped; the only tags are <mark>."""
    post(room, alice, 'payload <script>alert(1)</script> <img src=x onerror="x()"> \ue000 boom')
    (result,) = search.search(user=alice, query="payload").results
    snippet = result.snippet
    assert "<script" not in snippet and "<img" not in snippet
    assert "&lt;script&gt;" in snippet
    tags = snippet.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in tags and ">" not in tags


@pytest.mark.parametrize("query", ["needle", '"needle number"'])
def test_paging_with_the_cursor_has_no_duplicate_and_no_gap(alice, room, query):
    """Pages of 3 over 10 matches give each once, in order, even as new posts arrive.

    The phrase takes PostgreSQL's other plan (rows from the GIN index, sorted).
    """
    post(room, alice, *[f"needle number {i}" for i in range(10)])
    seen = []
    cursor = None
    while True:
        page = search.search(user=alice, query=query, limit=3, cursor=cursor)
        seen += [r.message for r in page.results]
        post(room, alice, "needle number arriving later")  # newer: never in a later page
        cursor = page.next
        if cursor is None:
            break
    assert seen == [f"needle number {i}" for i in reversed(range(10))]


def test_an_edit_is_reindexed(alice, room):
    """An edit (the change service) finds the new words and not the old ones."""
    (message,) = post(room, alice, "teh typo")
    services.message_edit(user=alice, room_id=room.pk, seq=message.seq, text="the fix")
    assert found(alice, "teh") == []
    assert found(alice, "fix") == ["the fix"]
    Message.objects.filter(pk=message.pk).update(text="by hand")  # any update of the text
    assert found(alice, "fix") == []
    assert found(alice, "hand") == ["by hand"]


def test_a_deleted_message_is_never_found(alice, room):
    """A tombstone (text "") is gone from the results, through the delete service too."""
    first, second = post(room, alice, "vanishing ink", "vanishing cream")
    services.message_delete(user=alice, room_id=room.pk, seq=first.seq)
    assert found(alice, "vanishing") == ["vanishing cream"]
    Message.objects.filter(pk=second.pk).update(deleted=True)
    assert found(alice, "vanishing") == []


def test_a_purged_row_leaves_the_index(alice, room):
    """Deleting the row (a purge) removes it from the index: no dangling hit."""
    (message,) = post(room, alice, "ephemeral words")
    Message.objects.filter(pk=message.pk).delete()
    assert found(alice, "ephemeral") == []


HOSTILE = [
    '"',
    '""',
    '"unclosed phrase',
    "*",
    "fox*",
    "NEAR(fox red)",
    "fox NEAR red",
    "^fox",
    "text:fox",
    "(fox",
    "fox)",
    "fox AND red",
    "fox OR",
    "OR fox",
    "NOT fox",
    "fox NOT red",
    "-fox red",
    "fox & red | !wine",
    "fox <-> red",
    "fox:*",
    "'fox'",
    "\\fox",
    "fox; DROP TABLE chat_message; --",
    "😀 fox",
    "ﬁx ǅ İstanbul",
    "\u202efox",
    "a" * 200,
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_give_results_or_a_clean_error(alice, room, query):
    """Query syntax of either database never reaches it as syntax: results or BAD_REQUEST."""
    post(room, alice, "red fox", "wine")
    try:
        page = search.search(user=alice, query=query)
    except ChatError as error:
        assert error.code == "BAD_REQUEST"
    else:
        assert all(r.message in ("red fox", "wine") for r in page.results)


@pytest.mark.parametrize("query", ["***", "-fox", "-fox -wine", '"" -fox', "( ) : ^"])
def test_a_query_with_no_word_to_find_finds_nothing(alice, room, query):
    """Only punctuation, or only words to exclude: an empty page, on both databases."""
    post(room, alice, "red fox", "wine")
    page = search.search(user=alice, query=query)
    assert (page.results, page.next) == ([], None)


def test_dates_at_the_edge_of_the_range_are_clamped_not_errors(alice, room):
    """A year-1 time east of UTC (or year-9999 west) is the earliest (latest) time, not a 500."""
    post(room, alice, "edge case")
    assert found(alice, "edge", after="0001-01-01T00:00:00+14:00") == ["edge case"]
    assert found(alice, "edge", before="9999-12-31T23:59:59-12:00") == ["edge case"]


@pytest.mark.parametrize(
    ("query", "filters", "code"),
    [
        ("", {}, "BAD_REQUEST"),
        ("   ", {}, "BAD_REQUEST"),
        ("x" * 201, {}, "BAD_REQUEST"),
        ("fox\x00", {}, "BAD_REQUEST"),
        ("fox", {"after": "yesterday"}, "BAD_REQUEST"),
        ("fox", {"before": "2026-13-01"}, "BAD_REQUEST"),
        ("fox", {"cursor": "abc"}, "BAD_REQUEST"),
        ("fox", {"limit": 0}, "BAD_REQUEST"),
        ("fox", {"limit": 51}, "BAD_REQUEST"),
        ("fox", {"cursor": "9" * 19}, "BAD_REQUEST"),
        ("fox", {"author": "nobody-by-this-name"}, "USER_INVALID"),
        ("fox", {"author": "ali\x00ce"}, "USER_INVALID"),
        ("fox", {"room": 987654}, "ROOM_INVALID"),
    ],
)
def test_bad_input_is_a_clear_error(alice, room, query, filters, code):
    """Blank or too long queries, bad dates, cursors, limits, unknown authors and rooms."""
    assert refused(alice, query, **filters) == code


def test_search_is_charged_to_the_history_budget(alice, room, settings):
    """Searching too fast is RATE_LIMITED, like history pages."""
    settings.CHAT_HISTORY_RATE = 0.001
    settings.CHAT_HISTORY_BURST = 2
    post(room, alice, "fox")
    found(alice, "fox")
    found(alice, "fox")
    assert refused(alice, "fox") == "RATE_LIMITED"


# --- REST ---------------------------------------------------------------------


def test_rest_search_answers_results_and_next(alice, room):
    """GET /api/search pages like the service, and its body is the socket's frame."""
    post(room, alice, "rest one", "rest two", "rest three")
    body = bearer(alice).get("/api/search", {"query": "rest", "limit": 2}).json()
    assert [r["message"] for r in body["search"]] == ["rest three", "rest two"]
    assert body["search"][0]["title"] == "General"
    more = bearer(alice).get("/api/search", {"query": "rest", "cursor": body["next"]}).json()
    assert [r["message"] for r in more["search"]] == ["rest one"] and more["next"] is None


def test_never_a_message_from_a_direct_conversation_one_is_not_in(alice, bob, staff, make_user):
    """Only a conversation's members find its posts: not another user, not staff, not by filter."""
    carol = make_user("carol")
    dm, _ = rooms.direct_open(user=alice, usernames=["bob"])
    services.message_send(user=alice, room_id=dm.pk, text="whispered rendezvous")
    assert found(alice, "rendezvous") == ["whispered rendezvous"]
    assert found(bob, "rendezvous") == ["whispered rendezvous"]
    for outsider in (carol, staff):
        assert found(outsider, "rendezvous") == []
        assert found(outsider, "rendezvous", author="alice") == []
        assert refused(outsider, "rendezvous", room=dm.pk) == "ROOM_ACCESS_DENIED"


def test_rest_search_never_finds_a_staff_only_room_for_non_staff(alice, staff, room, staff_room):
    """Over REST too, a staff-only room's messages stay hidden, and its filter is 403."""
    post(staff_room, staff, "classified memo")
    body = bearer(alice).get("/api/search", {"query": "classified"}).json()
    assert body == {"search": [], "next": None}
    denied = bearer(alice).get("/api/search", {"query": "memo", "room": staff_room.pk})
    assert denied.status_code == 403 and denied.json()["error"] == "ROOM_ACCESS_DENIED"
    assert len(bearer(staff).get("/api/search", {"query": "classified"}).json()["search"]) == 1


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 422),
        ({"query": ""}, 400),
        ({"query": " "}, 400),
        ({"query": "fox", "author": "nobody"}, 404),
        ({"query": "fox", "after": "soon"}, 400),
        ({"query": "fox", "room": 0}, 422),
        ({"query": "fox", "room": 987654}, 404),
    ],
)
def test_rest_bad_search_is_a_clean_error(alice, room, params, status):
    """Bad REST searches answer the error shape with a 4xx, never a 500."""
    response = bearer(alice).get("/api/search", params)
    assert response.status_code == status, response.content
    assert set(json.loads(response.content)) >= {"error", "detail"}


def test_rest_search_needs_credentials(room):
    """No credentials: 401."""
    assert Client().get("/api/search", {"query": "x"}).status_code == 401
