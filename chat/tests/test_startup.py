"""scripts/run's preparation (config/startup.py): done once, skipped while nothing changed."""

import os
import sqlite3
import subprocess
import sys

from config import startup
from testkit import ROOT


def run_startup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -X importtime -m config.startup`` as scripts/run calls it (imports on stderr)."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "config.startup", "--url", "http://x.test/"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def test_a_second_start_skips_the_preparation_without_importing_django(tmp_path, monkeypatch):
    """First start: migrate, collectstatic, demo set-up, stamp. Second: skipped, Django unread."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DATA_DIR=str(tmp_path),
        SECRET_KEY="startup-test-key",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.pop("STATIC_ROOT", None)
    first = run_startup(env)
    assert "Created the demo admin" in first.stdout
    assert (tmp_path / "static" / "chat" / "app.js").is_file()
    assert (tmp_path / startup.STAMP_NAME).is_file()

    second = run_startup(env)
    assert "skipped migrate, collectstatic, demo set-up" in second.stdout
    assert "open http://x.test/" in second.stdout
    imported = [line.split("|")[-1].strip() for line in second.stderr.splitlines()]
    assert not [name for name in imported if name.split(".")[0] == "django"]

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("STATIC_ROOT", raising=False)
    assert startup.up_to_date(tmp_path)
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:  # as if an older backup were restored
        db.execute("DELETE FROM django_migrations WHERE app = 'chat' AND name LIKE '0002%'")
    assert not startup.up_to_date(tmp_path)


def test_the_stamp_changes_with_a_migration_a_static_file_or_the_lock(tmp_path, monkeypatch):
    """Any change to a migration, a static file or uv.lock (or the database URL) prepares again."""
    app = tmp_path / "app"
    for path, text in {
        "__init__.py": "",
        "migrations/0001_initial.py": "# one",
        "static/app/x.js": "x",
    }.items():
        (app / path).parent.mkdir(parents=True, exist_ok=True)
        (app / path).write_text(text)
    (tmp_path / "uv.lock").write_text("lock")
    (tmp_path / "var" / "static").mkdir(parents=True)  # DATA_DIR's files are no source
    monkeypatch.setattr(startup, "ROOT", tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    seen = {startup.stamp()}
    (tmp_path / "var" / "static" / "collected.js").write_text("y")
    assert startup.stamp() in seen
    for path, text in [
        (app / "migrations" / "0002_more.py", "# two"),
        (app / "static" / "app" / "x.js", "x2"),
        (tmp_path / "uv.lock", "lock2"),
    ]:
        path.write_text(text)
        assert startup.stamp() not in seen
        seen.add(startup.stamp())
    monkeypatch.setenv("DATABASE_URL", "postgres://elsewhere/db")
    assert startup.stamp() not in seen
