"""Attachments (chat.files), and Message.files: a post's attachment descriptors.

On SQLite, adding a column with a database default rebuilds chat_message, which
drops its triggers: the full-text index's (0006_search) are made again after it.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


SQLITE_TRIGGERS = [
    "DROP TRIGGER IF EXISTS chat_message_fts_insert",
    "DROP TRIGGER IF EXISTS chat_message_fts_delete",
    "DROP TRIGGER IF EXISTS chat_message_fts_update",
    "CREATE TRIGGER chat_message_fts_insert AFTER INSERT ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER chat_message_fts_delete AFTER DELETE ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(chat_message_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER chat_message_fts_update AFTER UPDATE OF text ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(chat_message_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO chat_message_fts(rowid, text) VALUES (new.id, new.text); END",
]


def _sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in SQLITE_TRIGGERS:
            schema_editor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0006_search'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='message',
            name='files',
            field=models.TextField(blank=True, db_default='', default='', editable=False),
        ),
        migrations.RunPython(_sqlite_triggers, _sqlite_triggers),
        migrations.CreateModel(
            name='Attachment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(editable=False, max_length=32, unique=True)),
                ('name', models.CharField(max_length=255, verbose_name='name')),
                ('content_type', models.CharField(max_length=255, verbose_name='type')),
                ('size', models.PositiveBigIntegerField(verbose_name='size')),
                ('width', models.PositiveIntegerField(blank=True, null=True)),
                ('height', models.PositiveIntegerField(blank=True, null=True)),
                ('storage_name', models.CharField(max_length=1024)),
                ('thumb_name', models.CharField(blank=True, default='', max_length=1024)),
                ('created', models.DateTimeField(default=django.utils.timezone.now, verbose_name='created')),
                ('posted', models.DateTimeField(blank=True, null=True, verbose_name='posted')),
                ('message', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='attachments', to='chat.message', verbose_name='message')),
                ('uploader', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='attachments', to=settings.AUTH_USER_MODEL, verbose_name='uploader')),
            ],
            options={
                'verbose_name': 'attachment',
                'verbose_name_plural': 'attachments',
                'ordering': ['created', 'id'],
                'indexes': [models.Index(fields=['uploader', 'created'], name='chat_attach_uploader_created')],
            },
        ),
    ]
