"""Full-text search over the messages of every room a user may enter (service and selector).

The index is the database's own (chat/migrations/0006_search.py): a
``tsvector`` column with a GIN index on PostgreSQL, read with
``websearch_to_tsquery`` and ``ts_headline``; an FTS5 table kept by triggers
on SQLite. Both use a language-neutral configuration ("simple", unicode61):
words are found as written, lower-cased, in every language; nothing is stemmed.

Results are not ranked: they come newest first (by storage order), paged by
a keyset cursor (the last result's id), so a page never repeats or skips a
message when new ones arrive. Only the rooms of selectors.room_list_for_user
are searched: the one access rule, never restated here.

A query is the websearch syntax on both databases: words (all must occur),
``"a phrase"``, ``-word`` (must not occur) and ``or``. PostgreSQL parses it
itself (``websearch_to_tsquery`` never fails); for FTS5, whose MATCH syntax
raises on stray operators, the query is rebuilt here from quoted terms only.
A query with no word to find (only punctuation, or only ``-excluded`` words)
finds nothing, on both databases alike.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from django.db import connection
from django.db.models import BooleanField, F, Q, QuerySet, Value
from django.db.models.expressions import RawSQL

from chat import accounts, files, protocol, selectors, services
from chat.errors import ChatError, ErrorCode
from chat.events import iso_utc
from chat.models import Message
from chat.permissions import Account

# Private-use characters that ts_headline / snippet() put around the words found;
# the text is escaped after highlighting and only then are they turned into <mark>.
MARK_START = "\ue000"
MARK_END = "\ue001"
SNIPPET_WORDS = 24

# chat_message.text with & < > escaped (html.unescape undoes it: quotes need not be), and
# without the sentinel characters, so that only ts_headline's own are left.
_PG_ESCAPED = "replace(replace(text, '&', '&amp;'), '<', '&lt;')"
_PG_ESCAPED = f"replace({_PG_ESCAPED}, '>', '&gt;')"
for _char in (MARK_START, MARK_END):
    _PG_ESCAPED = f"replace({_PG_ESCAPED}, '{_char}', '')"

_TERM = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class SearchPage:
    """One page of results, newest first, and the cursor of the next page (None: no more)."""

    results: list[protocol.SearchResult]
    next: str | None


@dataclass(frozen=True)
class Query:
    """A parsed websearch query: alternatives (``or``), each of required and excluded terms."""

    alternatives: list[tuple[list[list[str]], list[list[str]]]]

    @property
    def has_phrase(self) -> bool:
        """True if a term is several words ("a phrase", or foo-bar): they must be side by side."""
        return any(len(term) > 1 for required, _ in self.alternatives for term in required)

    def fts5(self) -> str:
        """The FTS5 MATCH expression: every term a quoted phrase, so no syntax can leak in."""

        def phrase(words: list[str]) -> str:
            return '"' + " ".join(words) + '"'  # \\w words hold no quote

        parts = []
        for required, excluded in self.alternatives:
            expression = "(" + " AND ".join(phrase(t) for t in required) + ")"
            for term in excluded:
                expression = f"({expression} NOT {phrase(term)})"
            parts.append(expression)
        return " OR ".join(parts)


def parse_query(text: str) -> Query | None:
    """Parse ``text`` as websearch syntax; None if it has no word to find (it finds nothing)."""
    alternatives: list[tuple[list[list[str]], list[list[str]]]] = [([], [])]
    for match in _TERM.finditer(text):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and bare.lower() == "or":
            alternatives.append(([], []))
            continue
        if bare is not None and bare.startswith("-"):
            negated, bare = "-", bare[1:]
        words = _WORD.findall(quoted if quoted is not None else bare)
        if words:
            alternatives[-1][1 if negated else 0].append(words)
    kept = [alt for alt in alternatives if alt[0]]
    return Query(kept) if kept else None


def _clean(value: str, *, field: str) -> str:
    """``value`` if the database can hold it (no NUL, valid Unicode), else BAD_REQUEST."""
    if "\x00" in value:
        raise ChatError(ErrorCode.BAD_REQUEST, f"`{field}` contains a NUL character (U+0000).")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ChatError(ErrorCode.BAD_REQUEST, f"`{field}` is not valid Unicode.") from None
    return value


def _storable(value: str) -> bool:
    """True if the database can compare ``value``: no NUL, valid Unicode."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def parse_when(value: str | None, *, field: str, end: bool = False) -> datetime | None:
    """A date (``2026-11-29``: midnight UTC) or ISO 8601 datetime (naive: UTC); else BAD_REQUEST."""
    if value is None or value == "":
        return None
    text = _clean(value, field=field).strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time.min, tzinfo=UTC)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ChatError(
            ErrorCode.BAD_REQUEST,
            f"`{field}` must be a date (2026-11-29) or an ISO 8601 time (2026-11-29T18:20:00Z).",
        ) from None
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed past the range by its offset: the edge
        return (
            datetime.min.replace(tzinfo=UTC) if when.year == 1 else datetime.max.replace(tzinfo=UTC)
        )


def parse_cursor(value: str | None) -> int | None:
    """The id a cursor stands for; BAD_REQUEST for anything this module did not hand out."""
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= protocol.MAX_ID_DIGITS):
        raise ChatError(ErrorCode.BAD_REQUEST, "`cursor` must be a `next` value of a search.")
    if int(value) > protocol.MAX_ID:
        raise ChatError(ErrorCode.BAD_REQUEST, "`cursor` must be a `next` value of a search.")
    return int(value)


def _page_size(limit: int | None) -> int:
    """The page size: the default when None; BAD_REQUEST outside 1..SEARCH_MAX_PAGE_SIZE."""
    if limit is None:
        return protocol.SEARCH_PAGE_SIZE
    if isinstance(limit, bool) or not 1 <= limit <= protocol.SEARCH_MAX_PAGE_SIZE:
        raise ChatError(
            ErrorCode.BAD_REQUEST, f"`limit` must be between 1 and {protocol.SEARCH_MAX_PAGE_SIZE}."
        )
    return limit


def _match(query: str, parsed: Query) -> RawSQL:
    """The WHERE condition "the message's text matches", in this database's dialect."""
    if connection.vendor == "postgresql":
        return RawSQL(
            "chat_message.search @@ websearch_to_tsquery('simple'::regconfig, %s)",
            (query,),
            output_field=BooleanField(),
        )
    return RawSQL(
        "chat_message.id IN (SELECT rowid FROM chat_message_fts WHERE chat_message_fts MATCH %s)",
        (parsed.fts5(),),
        output_field=BooleanField(),
    )


def _snippets(ids: list[int], query: str, parsed: Query) -> dict[int, str]:
    """Each message's highlighted fragment with the sentinels around the words found."""
    if not ids:
        return {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            options = (
                f'StartSel="{MARK_START}", StopSel="{MARK_END}", '
                f"MaxWords={SNIPPET_WORDS}, MinWords={SNIPPET_WORDS // 2}, ShortWord=0"
            )
            cursor.execute(
                # The text is escaped before ts_headline, whose parser would drop
                # anything that looks like a tag; safe_snippet undoes it exactly.
                f"SELECT id, ts_headline('simple'::regconfig, {_PG_ESCAPED}, "
                "websearch_to_tsquery('simple'::regconfig, %s), %s) "
                "FROM chat_message WHERE id = ANY(%s)",
                (query, options, ids),
            )
        else:
            marks = ", ".join("%s" for _ in ids)
            cursor.execute(
                "SELECT rowid, snippet(chat_message_fts, 0, %s, %s, '…', %s) "
                "FROM chat_message_fts WHERE chat_message_fts MATCH %s "
                f"AND rowid IN ({marks})",
                (MARK_START, MARK_END, SNIPPET_WORDS, parsed.fts5(), *ids),
            )
        return {int(pk): text for pk, text in cursor.fetchall()}


def safe_snippet(highlighted: str, *, escaped: bool = False) -> str:
    """Escape ``highlighted``, then turn its sentinels into balanced <mark> tags (nothing else).

    ``escaped``: the text was escaped before it was highlighted (PostgreSQL); it
    is unescaped and escaped again, so whatever the highlighter did, the
    result holds no markup but the <mark> tags added here.
    """
    out = []
    open_ = False
    for part in re.split(f"([{MARK_START}{MARK_END}])", highlighted):
        if part == MARK_START:
            if not open_:
                out.append("<mark>")
                open_ = True
        elif part == MARK_END:
            if open_:
                out.append("</mark>")
                open_ = False
        else:
            out.append(html.escape(html.unescape(part) if escaped else part, quote=True))
    if open_:
        out.append("</mark>")
    return "".join(out)


def _snippet(highlighted: str | None, text: str) -> str:
    """The result's safe snippet: the highlighted fragment, else the start of the text."""
    if highlighted:
        return safe_snippet(highlighted, escaped=connection.vendor == "postgresql")
    return safe_snippet(text[:200])


PHRASE_FEW_ROWS = 5000  # rows with every word of a phrase: few enough to check them all


def _phrase_is_rare(parsed: Query) -> bool:
    """PostgreSQL: the query has a phrase whose words are in few rows (the planner's estimate)."""
    if connection.vendor != "postgresql" or not parsed.has_phrase:
        return False
    # The estimate of rows holding every word (anywhere), which is what the GIN
    # index hands over to be checked for the phrase.
    # Each word once: "zou zou" is in every row that has "zou" (the estimate would square it).
    words = " ".join(
        dict.fromkeys(w.lower() for required, _ in parsed.alternatives for t in required for w in t)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM chat_message "
            "WHERE search @@ plainto_tsquery('simple'::regconfig, %s)",
            (words,),
        )
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"]) <= PHRASE_FEW_ROWS


def message_search(
    *,
    user: Account,
    query: str,
    parsed: Query,
    room_id: int | None = None,
    author: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
    cursor: int | None = None,
    limit: int = protocol.SEARCH_PAGE_SIZE,
) -> tuple[list[Message], bool]:
    """The selector: the ``limit`` newest matching messages below id ``cursor``, and if more exist.

    Only over selectors.room_list_for_user(user); deleted messages never match.
    """
    found: QuerySet[Message] = Message.objects.filter(
        _match(query, parsed),
        room__in=selectors.room_list_for_user(user=user).values("pk"),
        deleted=False,
    ).select_related("room")
    if room_id is not None:
        found = found.filter(room_id=room_id)
    if author is not None:
        found = found.filter(username=author)
    if after is not None:
        found = found.filter(created__gte=after)
    if before is not None:
        found = found.filter(created__lt=before)
    if cursor is not None:
        found = found.filter(pk__lt=cursor)
    newest_first = F("pk").desc()
    if _phrase_is_rare(parsed):
        # PostgreSQL estimates a phrase as its words anywhere in the text, so for a
        # rare phrase of common words it walks the ids down through most of the table
        # looking for 21 matches. Ordering by an expression it cannot read from the
        # primary key makes it take the words' (few) rows from the GIN index instead.
        newest_first = (F("pk") + Value(0)).desc()
    page = list(found.order_by(newest_first)[: limit + 1])
    return page[:limit], len(page) > limit


def _author_known(username: str) -> bool:
    """True if an account has this name, or a stored message does (its account since deleted)."""
    from django.contrib.auth import get_user_model

    if get_user_model()._default_manager.filter(**accounts.named([username])).exists():
        return True
    return Message.objects.filter(Q(username=username)).exists()


def search(
    *,
    user: Account,
    query: str,
    room: int | None = None,
    author: str | None = None,
    after: str | None = None,
    before: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> SearchPage:
    """Search the rooms ``user`` may enter; charged to the history budget.

    BAD_REQUEST for a blank or too long query, bad dates, cursor or limit;
    USER_INVALID for an unknown author; ROOM_INVALID / ROOM_ACCESS_DENIED for
    a room filter the user may not use. A query with no word to find (only
    punctuation, or only words to exclude) finds nothing.
    """
    services.charge(user, "history")
    query = _clean(query, field="query")
    if not query.strip():
        raise ChatError(ErrorCode.BAD_REQUEST, "`query` is empty: say what to find.")
    if len(query) > protocol.SEARCH_QUERY_MAX_LENGTH:
        raise ChatError(
            ErrorCode.BAD_REQUEST,
            f"The query has {len(query)} characters; the limit is "
            f"{protocol.SEARCH_QUERY_MAX_LENGTH}.",
        )
    parsed = parse_query(query)
    size = _page_size(limit)
    since = parse_when(after, field="after")
    until = parse_when(before, field="before")
    below = parse_cursor(cursor)
    if room is not None:
        selectors.room_for_user(user=user, room_id=room)
    if author is not None:
        author = author.strip()
        if not author or not _storable(author) or not _author_known(author):
            raise ChatError(ErrorCode.USER_INVALID, f"There is no user {author[:150]!r}.")
    if parsed is None:  # nothing to find (only punctuation, or only words to exclude)
        return SearchPage([], None)
    page, more = message_search(
        user=user,
        query=query,
        parsed=parsed,
        room_id=room,
        author=author,
        after=since,
        before=until,
        cursor=below,
        limit=size,
    )
    snippets = _snippets([m.pk for m in page], query, parsed)
    results = [
        protocol.SearchResult(
            msg_type=m.msg_type,
            room=m.room_id,
            title=m.room.title,
            seq=m.seq,
            username=m.username,
            ts=iso_utc(m.created),
            message=m.text,
            html=m.html,
            edited=None if m.edited is None else iso_utc(m.edited),
            snippet=_snippet(snippets.get(m.pk), m.text),
            files=files.file_infos(m.files),
        )
        for m in page
    ]
    return SearchPage(results, str(page[-1].pk) if more and page else None)
