"""Get the data directory ready for scripts/run, and skip it when nothing changed.

``python -m config.startup --url URL`` migrates, collects the static files
and runs the demo set-up (all in one Django process), then writes a stamp in
DATA_DIR of what that was done for: the migration and static source files,
uv.lock (the installed versions, Django's own static files included) and
the database. The next start with the same stamp skips all three, which
each cost a Django start-up, and the server is up a few seconds sooner. A
SQLite database whose applied migrations lack one of the project's is
prepared again whatever the stamp says (a database restored from a backup).
This module reads only files until it has to prepare: importing Django is
the cost it saves.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP_NAME = "prepared.stamp"


def data_dir() -> Path:
    """DATA_DIR as config.settings reads it."""
    return Path(os.environ.get("DATA_DIR") or ROOT / "var")


def _packages() -> list[Path]:
    """The project's Python packages (its apps among them), not DATA_DIR or the venv."""
    return sorted(p for p in ROOT.iterdir() if (p / "__init__.py").is_file())


def _sources() -> list[Path]:
    """The files whose change needs a migrate or a collectstatic, in a stable order."""
    found: list[Path] = []
    for app in _packages():
        found += sorted((app / "migrations").glob("*.py"))
        found += sorted(p for p in (app / "static").rglob("*") if p.is_file())
    return [*found, ROOT / "uv.lock"]


def stamp() -> str:
    """A digest of the sources' contents and of where the database and static files live."""
    digest = hashlib.sha256()
    for name in ("DATABASE_URL", "STATIC_ROOT"):
        digest.update(f"{name}={os.environ.get(name, '')}\n".encode())
    for path in _sources():
        digest.update(f"{path.relative_to(ROOT)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _sqlite_migrated(database: Path) -> bool:
    """True if the SQLite file has every migration of the project's apps applied."""
    names = {(app.name, p.stem) for app in _packages() for p in (app / "migrations").glob("0*.py")}
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            applied = set(db.execute("SELECT app, name FROM django_migrations"))
    except sqlite3.Error:
        return False
    return names <= applied


def up_to_date(directory: Path) -> bool:
    """True if the last preparation was for the current sources and its results are still there."""
    try:
        if (directory / STAMP_NAME).read_text().strip() != stamp():
            return False
    except OSError:
        return False
    static_root = Path(os.environ.get("STATIC_ROOT") or directory / "static")
    if not static_root.is_dir():
        return False
    return bool(os.environ.get("DATABASE_URL")) or _sqlite_migrated(directory / "db.sqlite3")


def prepare(url: str) -> None:
    """Migrate, collect static files and run the demo set-up in this process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("demo_setup", url=url)


def main(argv: list[str]) -> int:
    """Prepare DATA_DIR unless it is up to date; print where the chat will be."""
    parser = argparse.ArgumentParser(prog="python -m config.startup", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000/", help="Where the chat is served.")
    args = parser.parse_args(argv)
    directory = data_dir()
    if up_to_date(directory):
        print("Nothing changed since the last start: skipped migrate, collectstatic, demo set-up.")
        print(f"multichat is starting: open {args.url}")
        if (directory / "demo_credentials").exists():
            print(f"The demo admin's login is in {directory / 'demo_credentials'}.")
        return 0
    current = stamp()  # taken before preparing: a file changed meanwhile prepares again next time
    prepare(args.url)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / STAMP_NAME).write_text(current + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
