"""The ``search`` benchmark: full-text search latency over many stored messages.

    .venv/bin/python -m bench.search --database postgres://postgres@127.0.0.1:5432/mc_search_bench
    .venv/bin/python -m bench.search --database sqlite:////tmp/mc_search_bench.sqlite3
        [--messages 1000000] [--rooms 300] [--users 200] [--queries 200] [--keep]

Makes the database (dropping it first if it exists), migrates it, stores
``--messages`` messages fast (PostgreSQL: one INSERT ... SELECT over
generate_series; SQLite: executemany in batches, through the FTS triggers),
with text drawn from a fixed-seed vocabulary (a few words very common, most
rare, as in real text) in ``--rooms`` rooms (one in ten staff-only) by
``--users`` authors. It then times chat.search.search, the service every
interface calls, as a non-staff user (so the access rule filters): a common
word, a common word's second page, a rare word, a phrase from a stored
message, a phrase of two random common words (mostly never side by side:
the hard case), two words, a word minus a word, a common word in
one room, a common word by one author (each after 5 untimed warm-up
searches); and the common word once more through REST (GET /api/search,
Django's test client, in process). Prints
one JSON object: per query kind p50/p95/p99/max in ms and the matches of
the first page. The database is dropped afterwards unless ``--keep``.

Run in process, not against a server: the figure is the database's and the
service's, not the network's. bench.run's ``search`` scenario runs this
module in a subprocess (``python -m bench.run --scenarios search``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SEED = 16
VOCABULARY = 20_000
WORDS_MIN, WORDS_MAX = 4, 16
SKEW = 2.5  # a word's index is VOCABULARY * random() ** SKEW: low indexes are common
BATCH = 20_000
WARMUP = 5  # untimed searches before each kind is timed


def vocabulary(seed: int = SEED, size: int = VOCABULARY) -> list[str]:
    """``size`` distinct pronounceable words, the same for a seed on every run."""
    rng = random.Random(seed)
    onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "st", "kr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou"]
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(1, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of ``samples`` (seconds), in milliseconds."""
    ordered = sorted(samples)

    def pick(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "p50_ms": pick(0.5),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


def setup_django(database: str) -> None:
    """Point Django at ``database`` (statement timeout raised for the fill) and set it up."""
    os.environ["DATABASE_URL"] = database
    os.environ.setdefault("SECRET_KEY", "bench-search-only")
    os.environ["DATABASE_STATEMENT_TIMEOUT"] = "3600"
    os.environ["CHAT_HISTORY_RATE"] = "0"
    os.environ.pop("REDIS_URL", None)
    os.environ["ALLOWED_HOSTS"] = "testserver"  # Django's test client, for the REST figure
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def recreate_database(database: str) -> None:
    """Drop and create the benchmark's database (PostgreSQL) or remove its file (SQLite)."""
    if database.startswith("sqlite:"):
        path = Path(urlsplit(database).path)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    parts = urlsplit(database)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(database: str) -> None:
    """Remove the benchmark's database after the run."""
    from django.db import connections

    connections.close_all()
    if database.startswith("sqlite:"):
        recreate_database(database)
        return
    import psycopg

    parts = urlsplit(database)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def make_people_and_rooms(*, users: int, rooms: int) -> tuple[list[tuple[int, str]], list[int]]:
    """``users`` accounts (the first one searches; none is staff) and ``rooms``, 1 in 10 staff."""
    from django.contrib.auth.models import User

    from chat.models import Room

    User.objects.bulk_create(User(username=f"user{i:04d}") for i in range(users))
    Room.objects.bulk_create(
        Room(title=f"Room {i:03d}", staff_only=i % 10 == 9) for i in range(rooms)
    )
    people = list(User.objects.order_by("pk").values_list("pk", "username"))
    return people, list(Room.objects.order_by("pk").values_list("pk", flat=True))


def fill_postgresql(
    *, messages: int, words: list[str], people: list[tuple[int, str]], rooms: list[int]
) -> None:
    """One INSERT ... SELECT over generate_series; the search index is built afterwards."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX chat_message_search")
        cursor.execute("SELECT setseed(%s)", [SEED / 100])
        cursor.execute(
            """
            INSERT INTO chat_message (room_id, author_id, username, msg_type, text, seq, num,
                                      created, deleted, mentions_room, html)
            SELECT rooms[1 + g %% cardinality(rooms)],
                   ids[1 + g %% cardinality(ids)], names[1 + g %% cardinality(names)], 0,
                   array_to_string(ARRAY(
                       SELECT words[1 + floor(power(random(), %s) * cardinality(words))::int]
                       FROM generate_series(1, %s + (g * 7) %% %s)
                   ), ' '),
                   1 + g / cardinality(rooms), 1 + g / cardinality(rooms),
                   now() - make_interval(secs => (%s - g)), false, false, ''
            FROM generate_series(0, %s - 1) AS g,
                 (SELECT %s::bigint[] AS rooms, %s::int[] AS ids, %s::text[] AS names,
                         %s::text[] AS words) AS v
            """,
            [
                SKEW,
                WORDS_MIN,
                WORDS_MAX - WORDS_MIN + 1,
                messages,
                messages,
                rooms,
                [pk for pk, _ in people],
                [name for _, name in people],
                words,
            ],
        )
        cursor.execute(
            "UPDATE chat_room r SET last_seq = m.n, posts = m.n FROM "
            "(SELECT room_id, max(seq) AS n FROM chat_message GROUP BY room_id) m "
            "WHERE m.room_id = r.id"
        )
        cursor.execute("CREATE INDEX chat_message_search ON chat_message USING GIN (search)")
        cursor.execute("VACUUM ANALYZE")  # every table: the steady state autovacuum reaches


def fill_sqlite(
    *, messages: int, words: list[str], people: list[tuple[int, str]], rooms: list[int]
) -> None:
    """executemany in batches, through the FTS5 triggers as every post goes."""
    from django.db import connection, transaction

    rng = random.Random(SEED)
    start = time.time() - messages
    size = len(words)
    with connection.cursor() as cursor:
        for first in range(0, messages, BATCH):
            rows = []
            for g in range(first, min(messages, first + BATCH)):
                count = WORDS_MIN + (g * 7) % (WORDS_MAX - WORDS_MIN + 1)
                text = " ".join(words[int(rng.random() ** SKEW * size)] for _ in range(count))
                author, name = people[g % len(people)]
                seq = 1 + g // len(rooms)
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + g))
                rows.append((rooms[g % len(rooms)], author, name, text, seq, seq, when))
            with transaction.atomic():
                cursor.executemany(
                    "INSERT INTO chat_message (room_id, author_id, username, msg_type, text, "
                    "seq, num, created, deleted, mentions_room, html) "
                    "VALUES (%s, %s, %s, 0, %s, %s, %s, %s, 0, 0, '')",
                    rows,
                )
        cursor.execute(
            "UPDATE chat_room SET last_seq = (SELECT coalesce(max(seq), 0) FROM chat_message "
            "WHERE room_id = chat_room.id)"
        )
        cursor.execute("UPDATE chat_room SET posts = last_seq")
        cursor.execute("INSERT INTO chat_message_fts(chat_message_fts) VALUES ('optimize')")
        cursor.execute("ANALYZE")


def timed(call, samples: list[float]) -> object:
    """Run ``call``, add its duration to ``samples``, return its result."""
    began = time.perf_counter()
    result = call()
    samples.append(time.perf_counter() - began)
    return result


def measure(
    *, words: list[str], people: list[tuple[int, str]], rooms: list[int], queries: int
) -> dict[str, dict]:
    """Time each kind of search ``queries`` times as the first (non-staff) user."""
    from django.contrib.auth.models import User
    from django.test import Client

    from chat import search
    from chat.models import Message

    rng = random.Random(SEED + 1)
    user = User.objects.get(pk=people[0][0])
    open_rooms = [r for i, r in enumerate(rooms) if i % 10 != 9]
    common = words[:5]
    rare = words[-200:]
    # Phrases people remember: two words side by side in a stored message, picked at random.
    top = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 1
    remembered = []
    while len(remembered) < 50:
        text = Message.objects.filter(pk=rng.randint(1, top)).values_list("text", flat=True).first()
        if text and len(text.split()) >= 2:
            at = rng.randrange(len(text.split()) - 1)
            remembered.append(" ".join(text.split()[at : at + 2]))
    kinds = {
        "common word": lambda: {"query": rng.choice(common)},
        "rare word": lambda: {"query": rng.choice(rare)},
        "phrase (in the text)": lambda: {"query": f'"{rng.choice(remembered)}"'},
        "phrase (random pair)": lambda: {
            "query": f'"{rng.choice(words[:30])} {rng.choice(words[:30])}"'
        },
        "two words": lambda: {"query": f"{rng.choice(words[5:50])} {rng.choice(words[5:50])}"},
        "word -word": lambda: {"query": f"{rng.choice(common)} -{rng.choice(words[5:10])}"},
        "common, room filter": lambda: {
            "query": rng.choice(common),
            "room": rng.choice(open_rooms),
        },
        "common, author filter": lambda: {
            "query": rng.choice(common),
            "author": rng.choice(people)[1],
        },
    }
    results: dict[str, dict] = {}
    for kind, make in kinds.items():
        for _ in range(WARMUP):  # untimed: the first queries of a kind load its index pages
            search.search(user=user, **make())
        samples: list[float] = []
        matches = []
        for _ in range(queries):
            params = make()
            page = timed(lambda p=params: search.search(user=user, **p), samples)
            matches.append(len(page.results))  # type: ignore[attr-defined]
        results[kind] = {
            **percentiles(samples),
            "n": queries,
            "mean_hits": statistics.fmean(matches),
        }
    # Second pages: the cursor of a first page of the common word.
    samples = []
    for _ in range(queries):
        word = rng.choice(common)
        first = search.search(user=user, query=word)
        timed(lambda w=word, c=first.next: search.search(user=user, query=w, cursor=c), samples)
    results["common word, page 2"] = {**percentiles(samples), "n": queries}
    client = Client()
    client.force_login(user)
    for _ in range(WARMUP):  # untimed: the first requests import and build the API
        client.get("/api/search", {"query": rng.choice(common)})
    samples = []
    for _ in range(queries):
        word = rng.choice(common)
        response = timed(lambda w=word: client.get("/api/search", {"query": w}), samples)
        assert response.status_code == 200, response.content  # type: ignore[attr-defined]
    results["common word, REST"] = {**percentiles(samples), "n": queries}
    return results


def run(
    *, database: str, messages: int, rooms: int, users: int, queries: int, keep: bool = False
) -> dict:
    """Make, fill and measure the database; the results as a dict."""
    recreate_database(database)
    setup_django(database)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", "--noinput", verbosity=0)
    words = vocabulary()
    people, room_ids = make_people_and_rooms(users=users, rooms=rooms)
    began = time.perf_counter()
    fill = fill_postgresql if connection.vendor == "postgresql" else fill_sqlite
    fill(messages=messages, words=words, people=people, rooms=room_ids)
    filled = time.perf_counter() - began
    try:
        steps = measure(words=words, people=people, rooms=room_ids, queries=queries)
    finally:
        if not keep:
            drop_database(database)
    return {
        "database": connection.vendor,
        "messages": messages,
        "rooms": rooms,
        "users": users,
        "fill_s": round(filled, 1),
        "steps": [{"step": kind, **values} for kind, values in steps.items()],
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run, print the results as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.search",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database", required=True, help="postgres://.../NAME or sqlite:///PATH")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=300)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--queries", type=int, default=200, help="searches per kind")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    result = run(
        database=args.database,
        messages=args.messages,
        rooms=args.rooms,
        users=args.users,
        queries=args.queries,
        keep=args.keep,
    )
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
