"""Translation: every UI string is in the catalogues, translated and compiled; pages follow it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from testkit.factories import bearer

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "chat" / "locale"
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
        extracted = copy / "chat" / "locale" / language / "LC_MESSAGES" / f"{domain}.po"
        stats = _statistics(extracted)
        assert "untranslated" not in stats and "fuzzy" not in stats, f"{domain}.po: {stats}"
        committed = LOCALES / language / "LC_MESSAGES" / f"{domain}.po"
        entries = re.compile(r'^msgid "(.+)"$', re.M)
        assert set(entries.findall(extracted.read_text())) == set(
            entries.findall(committed.read_text())
        ), f"chat/locale/{language}/LC_MESSAGES/{domain}.po is stale: run scripts/messages"


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


GERMAN = {"accept-language": "de-DE,de;q=0.9"}


def _german_client(user) -> Client:
    """A test client logged in as ``user`` whose browser asks for German."""
    client = Client(headers=GERMAN)
    client.force_login(user)
    return client


def test_chat_page_follows_the_browsers_language(alice):
    """The chat page's shell (top bar, skip link, headings, labels) is German for a German."""
    page = _german_client(alice).get("/").text
    assert '<html lang="de">' in page
    for german in (
        "Zu den offenen Räumen springen",
        "Verbindung wird hergestellt…",
        'title="Dein Profil"',
        ">API-Tokens<",
        ">Abmelden<",
        ">Räume<",
        "Räume durchsuchen",
        'aria-label="Offene Räume"',
        "Wähle einen Raum, um ihn zu betreten.",
    ):
        assert german in page, german
    for english in ("Log out", "Browse rooms", "Skip to", "Connecting", "Pick a room"):
        assert english not in page, english
    english = Client(headers={"accept-language": "en-US"})
    english.force_login(alice)
    assert ">Log out<" in english.get("/").text


def test_token_page_follows_the_browsers_language_but_not_the_commands(alice):
    """The token page, a new token's hint included, is German; the commands stay as they are."""
    client = _german_client(alice)
    listing = client.get("/tokens/").text
    assert "<h1>API-Tokens</h1>" in listing
    assert "Du hast noch keine Tokens." in listing
    assert "Wofür das Token ist" in listing  # the form's help text (api/forms.py)
    created = client.post("/tokens/new/", {"name": "Bot"}).text
    assert "Dein neues Token „Bot“" in created
    assert "Kopiere es jetzt" in created
    assert "führe dies in einem Checkout von multichat aus" in created
    assert "export MULTICHAT_URL=" in created and "python3 -m multichat_client rooms" in created
    assert "Bot widerrufen" in client.get("/tokens/").text  # the revoke button's aria-label


def _picker(page: str) -> str:
    """The language picker's form in ``page``."""
    found = re.search(r'<form class="language-picker".*?</form>', page, re.S)
    assert found, "no language picker on the page"
    return found.group(0)


def test_login_and_chat_pages_have_a_labelled_language_picker_posting_to_set_language(alice):
    """A <select> with a label, CSRF and the page as `next`, posting to Django's set_language."""
    login = _picker(Client().get("/login/?next=/tokens/").text)
    client = Client()
    client.force_login(alice)
    chat = _picker(client.get("/").text)
    for form, where in ((login, "login"), (chat, "topbar")):
        assert 'method="post" action="/i18n/setlang/"' in form
        assert 'name="csrfmiddlewaretoken"' in form
        assert f'<label for="language-{where}">Language</label>' in form
        assert f'<select id="language-{where}" name="language">' in form
        assert '<option value="de" lang="de">Deutsch</option>' in form
        assert '<option value="en" lang="en" selected>English</option>' in form
    assert 'name="next" value="/login/?next=/tokens/"' in login
    assert 'name="next" value="/"' in chat


def test_the_language_picker_switches_the_language_and_back(alice):
    """Choosing Deutsch sets the language cookie: pages are German whatever the browser asks."""
    client = Client(enforce_csrf_checks=True, headers={"accept-language": "en-US"})
    client.force_login(alice)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get("/").text)
    assert token
    csrf = {"csrfmiddlewaretoken": token.group(1), "next": "/"}
    switched = client.post("/i18n/setlang/", {**csrf, "language": "de"})
    assert (switched.status_code, switched["Location"]) == (302, "/")
    assert client.cookies["django_language"].value == "de"
    cookie = client.cookies["django_language"]
    assert (cookie["httponly"], cookie["samesite"]) == (True, "Lax")  # like the session's
    page = client.get("/").text
    assert '<html lang="de">' in page and ">Abmelden<" in page
    assert '<option value="de" lang="de" selected>Deutsch</option>' in _picker(page)
    back = client.post("/i18n/setlang/", {**csrf, "language": "en"})
    assert back.status_code == 302 and client.cookies["django_language"].value == "en"
    assert ">Log out<" in client.get("/").text


def test_login_page_picker_works_before_logging_in():
    """On the login page, switching to German keeps the visitor on the login page, now German."""
    client = Client(headers={"accept-language": "en-US"})
    client.get("/login/")
    response = client.post("/i18n/setlang/", {"language": "de", "next": "/login/"}, follow=True)
    assert response.redirect_chain == [("/login/", 302)]
    assert "Melde dich an, um mitzureden." in response.text


def test_logout_notice_and_signup_refusals_are_translated(alice, settings):
    """Python strings: the logged-out message (a view) and why a sign-up is refused (a page)."""
    client = _german_client(alice)
    after = client.post("/logout/", follow=True).text
    assert "Du wurdest abgemeldet." in after
    settings.CHAT_OPEN_SIGNUP = False
    refused = Client(headers=GERMAN).get("/signup/")
    assert refused.status_code == 404
    assert "Registrierung nur mit Einladung" in refused.text
    unknown = Client(headers=GERMAN).get("/signup/not-a-real-link/").text
    assert "Dieser Link funktioniert nicht" in unknown


def test_admin_shows_translated_names_and_actions(transactional_db, room):
    """Model names, field names, help texts and admin actions come out German in the admin."""
    client = _german_client(get_user_model().objects.create_superuser("root", password="pw-1"))
    rooms = client.get("/admin/chat/room/").text
    assert "Eine Warnung, einen Alarm oder einen Hinweis in die ausgewählten Räume senden" in rooms
    assert "nur für das Team" in rooms  # the staff_only column
    add = client.get("/admin/chat/room/add/").text
    assert "Nur das Team kann diesen Raum sehen und betreten." in add
    assert "Einladungen" in client.get("/admin/").text


def test_rest_error_texts_stay_english_for_a_german_client(alice, room):
    """The REST `detail` is protocol (English, documented): a German Accept-Language leaves it."""
    client = bearer(alice)
    response = client.post(
        f"/api/rooms/{room.pk}/messages",
        {"message": "careful", "msg_type": 1},
        content_type="application/json",
        headers=GERMAN,
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "Only staff may post warning messages."


def test_locked_out_page_says_how_long_to_wait_in_words_of_the_language(settings, alice):
    """The lock-out page names the wait in words ("15 minutes", "15 Minuten"), not as PT15M."""
    pages = {}
    for language in ("en", "de"):
        client = Client(headers={"accept-language": language})
        for _ in range(settings.AXES_FAILURE_LIMIT):
            response = client.post("/login/", {"username": "alice", "password": "wrong"})
        assert response.status_code == 429
        pages[language] = " ".join(response.text.replace("\xa0", " ").split())
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    assert f"Wait {minutes} minutes and try again" in pages["en"]
    assert f"Warte {minutes} Minuten und versuche es dann erneut" in pages["de"]
    assert f"PT{minutes}M" not in pages["en"] + pages["de"]  # axes' ISO 8601 cooloff_time
