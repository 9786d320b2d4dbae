"""Translation: every UI string is in the catalogues, translated and compiled; pages follow it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "locale"
NEEDS_GETTEXT = pytest.mark.skipif(
    shutil.which("xgettext") is None or shutil.which("msgfmt") is None,
    reason="no GNU gettext (Debian: apt-get install gettext) to extract the catalogues",
)
# What scripts/messages leaves out of the source copy: not the project's own UI strings.
SKIP = shutil.ignore_patterns(
    ".venv", "var", ".git", "test-artifacts", "node_modules", "__pycache__", "*.mo", "bench"
)


def _statistics(po: Path) -> str:
    """msgfmt's count of translated, fuzzy and untranslated entries in ``po``."""
    done = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(po)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stderr.strip()


@NEEDS_GETTEXT
@pytest.mark.parametrize("language", ["de"])
def test_every_ui_string_is_in_the_catalogue_and_translated(tmp_path, language):
    """Extracting the strings from a copy of the code finds none untranslated, fuzzy or missing."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT, copy, ignore=SKIP, symlinks=True)
    # What scripts/messages runs, on the copy: it rewrites the copy's .po files only.
    done = subprocess.run(
        [sys.executable, "manage.py", "messages", "--no-compile"],
        cwd=copy,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for domain in ("django", "djangojs"):
        extracted = copy / "locale" / language / "LC_MESSAGES" / f"{domain}.po"
        stats = _statistics(extracted)
        assert "untranslated" not in stats and "fuzzy" not in stats, f"{domain}.po: {stats}"
        committed = LOCALES / language / "LC_MESSAGES" / f"{domain}.po"
        entries = re.compile(r'^msgid "(.+)"$', re.M)
        assert set(entries.findall(extracted.read_text())) == set(
            entries.findall(committed.read_text())
        ), f"locale/{language}/LC_MESSAGES/{domain}.po is stale: run scripts/messages"


@NEEDS_GETTEXT
@pytest.mark.parametrize("language", ["de"])
def test_the_committed_catalogues_are_compiled(tmp_path, language):
    """Each committed .mo is what msgfmt makes of its .po (serving needs no gettext)."""
    for po in (LOCALES / language / "LC_MESSAGES").glob("*.po"):
        fresh = tmp_path / f"{po.stem}.mo"
        subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(po)], check=True)
        assert fresh.read_bytes() == po.with_suffix(".mo").read_bytes(), (
            f"{po.with_suffix('.mo')} is stale: run scripts/messages"
        )


@pytest.mark.django_db
def test_login_page_follows_the_browsers_language():
    """Accept-Language: de gives the German login page, with lang="de"; English otherwise."""
    german = Client(headers={"accept-language": "de-DE,de;q=0.9"}).get("/login/")
    assert '<html lang="de">' in german.text
    assert "Anmelden" in german.text
    english = Client(headers={"accept-language": "en-GB"}).get("/login/")
    assert '<html lang="en">' in english.text


@pytest.mark.django_db
def test_javascript_catalogue_is_served_in_the_pages_language():
    """/jsi18n/ carries the German strings for a German browser, none for an English one."""
    german = Client(headers={"accept-language": "de"}).get("/jsi18n/")
    assert german.status_code == 200
    assert german["Content-Type"].startswith("text/javascript")
    assert '"Reconnecting\\u2026"' in german.text or '"Reconnecting…"' in german.text
    english = Client(headers={"accept-language": "en"}).get("/jsi18n/")
    assert "Reconnecting" not in english.text
