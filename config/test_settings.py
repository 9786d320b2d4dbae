"""Settings for the test suite: the real settings, with a throwaway secret and fast hashing."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("SECRET_KEY", "insecure-key-for-the-test-suite-only")

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "testkit"]  # manage.py testkit: test data, never in production
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Attachments uploaded by tests: a directory of this run's own, removed at its end.
_files_dir = tempfile.mkdtemp(prefix="multichat-test-files-")
atexit.register(shutil.rmtree, _files_dir, ignore_errors=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "chat_files": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": _files_dir},
    },
}
SERVESTATIC_USE_FINDERS = True
SERVESTATIC_AUTOREFRESH = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not the in-memory default: shared-cache memory databases fail
    # concurrent writers at once ("table is locked") instead of queueing
    # them as the real SQLite file with WAL and a busy timeout does.
    DATA_DIR.mkdir(parents=True, exist_ok=True)  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}  # noqa: F405
