"""A checkout's manage.py finds var/ as scripts/run leaves it: the README's commands work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import ROOT

CODE = ("manage.py", "config", "chat", "api", "people")
UNSET = ("DATA_DIR", "SECRET_KEY", "SECRET_KEY_FILE", "DJANGO_SETTINGS_MODULE", "DATABASE_URL")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the source tree, without var/."""
    root = tmp_path_factory.mktemp("checkout")
    ignore = shutil.ignore_patterns("__pycache__", "tests", "static")
    for name in CODE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=ignore)
        else:
            shutil.copy(source, root / name)
    return root


def manage(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the copy's manage.py as a person would: none of its settings in the environment."""
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_var_manage_py_says_the_secret_key_is_missing(checkout):
    """No var/secret_key (scripts/run never ran): the error names SECRET_KEY, as before."""
    shutil.rmtree(checkout / "var", ignore_errors=True)
    done = manage(checkout, "check")
    assert done.returncode != 0
    assert "SECRET_KEY is required" in done.stderr


def test_after_scripts_run_createsuperuser_and_invite_work_as_written(checkout):
    """With var/secret_key as scripts/run makes it, the README's commands run with no env vars."""
    var = checkout / "var"
    var.mkdir(exist_ok=True)
    (var / "secret_key").write_text("a-checkout-secret-key-" + "k" * 40 + "\n")
    assert manage(checkout, "migrate", "--noinput", "-v0").returncode == 0
    made = manage(
        checkout,
        "createsuperuser",
        "--noinput",
        "--username",
        "boss",
        "--email",
        "",
        DJANGO_SUPERUSER_PASSWORD="boss-pw-1234-long",
    )
    assert made.returncode == 0, made.stderr
    invited = manage(checkout, "invite", "--uses", "3", "--expires", "7d")
    assert invited.returncode == 0, invited.stderr
    assert invited.stdout.startswith("http://127.0.0.1:8000/signup/")
    assert (var / "db.sqlite3").exists()  # the checkout's database, where scripts/run keeps it


def test_a_set_data_dir_is_left_to_its_own_settings(checkout, tmp_path):
    """DATA_DIR set (a deployment): the checkout's key is not borrowed; SECRET_KEY is required."""
    (checkout / "var").mkdir(exist_ok=True)
    (checkout / "var" / "secret_key").write_text("a-checkout-secret-key-" + "k" * 40 + "\n")
    done = manage(checkout, "check", DATA_DIR=str(tmp_path))
    assert done.returncode != 0
    assert "SECRET_KEY is required" in done.stderr
