"""Full-text search over chat_message: a tsvector + GIN index on PostgreSQL, FTS5 on SQLite.

Neither is in the model state (Message has no search field): the index is the
database's own, kept by the database (a generated column, or triggers) on every
insert, edit, deletion and purge, so no code path can forget it. chat.search
reads it with raw SQL. Existing rows are indexed here.

The text search configuration is ``simple`` (PostgreSQL) and ``unicode61``
with diacritics kept (SQLite): chat is multilingual, and both find the words
as written, lower-cased, in every language; a stemming configuration
(``english``) would mangle every other language's words and drop their
"stop words" as if they were English.
"""

from django.db import migrations, models

PG_FORWARD = [
    # A stored generated column: PostgreSQL recomputes it whenever `text` changes
    # (an edit, a deletion's "" tombstone), and fills it for every existing row now.
    "ALTER TABLE chat_message ADD COLUMN search tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, text)) STORED",
    "CREATE INDEX chat_message_search ON chat_message USING GIN (search)",
]
PG_BACKWARD = [
    "DROP INDEX IF EXISTS chat_message_search",
    "ALTER TABLE chat_message DROP COLUMN IF EXISTS search",
]

SQLITE_FORWARD = [
    # External content: the text lives once, in chat_message; FTS5 keeps only the index.
    "CREATE VIRTUAL TABLE chat_message_fts USING fts5("
    "text, content='chat_message', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER chat_message_fts_insert AFTER INSERT ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER chat_message_fts_delete AFTER DELETE ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(chat_message_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER chat_message_fts_update AFTER UPDATE OF text ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(chat_message_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO chat_message_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO chat_message_fts(chat_message_fts) VALUES ('rebuild')",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS chat_message_fts_update",
    "DROP TRIGGER IF EXISTS chat_message_fts_delete",
    "DROP TRIGGER IF EXISTS chat_message_fts_insert",
    "DROP TABLE IF EXISTS chat_message_fts",
]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_conversations"),
    ]

    operations = [
        # The author filter of a search, newest first (the author's posts by id).
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["username", "id"], name="chat_message_username_id"),
        ),
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
