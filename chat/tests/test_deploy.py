"""deploy/Dockerfile copies everything the server needs: its apps, its imports, what it runs."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from django.apps import apps

from config import settings as production_settings
from testkit import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"  # the build context is the repository root
SERVE = ROOT / "scripts" / "serve"

# Run in a fresh interpreter: what the server process imports once it is up. config.asgi
# is what uvicorn loads; the URLconf and the views it names load on the first request.
LIST_IMPORTS = """
import json, os, sys
import config.server, config.asgi
from django.urls import get_resolver
get_resolver().url_patterns
files = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
print(json.dumps({name: path for name, path in files.items() if path}))
"""


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def copied_sources(dockerfile: str) -> set[str]:
    """The build-context paths that the Dockerfile's COPY/ADD lines put into the image."""
    sources: set[str] = set()
    for keyword, rest in instructions(dockerfile):
        if keyword not in ("COPY", "ADD"):
            continue
        words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        words = [w for w in words if not w.startswith("--")]
        if any(w.startswith("--from") for w in rest.split()):
            continue  # from another stage, not from the repository
        for source in words[:-1]:
            sources.add(os.path.normpath(source).rstrip("/"))
    return sources


def is_copied(path: str, sources: set[str]) -> bool:
    """True if the repository path ``path`` is copied itself or inside a copied directory."""
    path = os.path.normpath(path)
    return any(s == "." or path == s or path.startswith(s + "/") for s in sources)


def repository_path(file: str) -> str | None:
    """``file`` relative to the repository root, or None if it lives elsewhere (the venv)."""
    real = Path(os.path.realpath(file))
    if real.is_relative_to(ROOT / ".venv") or not real.is_relative_to(ROOT):
        return None
    return real.relative_to(ROOT).as_posix()


def top_level(path: str) -> str:
    """The first component of a repository path: the package directory or the module file."""
    return path.split("/", 1)[0]


def local_apps() -> set[str]:
    """The top-level directories of production's INSTALLED_APPS that live in this repository.

    config.test_settings adds the test-only testkit app; the image runs config.settings.
    """
    return {
        top_level(relative)
        for config in apps.get_app_configs()
        if config.name in production_settings.INSTALLED_APPS
        and (relative := repository_path(config.path)) is not None
    }


def server_imports() -> set[str]:
    """The repository's top-level packages and modules that a running server has imported."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "deploy-test-" + "k" * 50,
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", LIST_IMPORTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        top_level(relative)
        for file in modules.values()
        if (relative := repository_path(file)) is not None
    }


def script_commands(script: Path, seen: set[Path] | None = None) -> list[list[str]]:
    """The commands a shell script runs, with the scripts it sources followed (comments dropped)."""
    seen = seen if seen is not None else set()
    seen.add(script)
    commands = []
    for line in re.sub(r"\\\n", " ", script.read_text()).splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue  # a line of a multi-line construct: not a command we look at
        if not words:
            continue
        if words[0] in ("source", ".") and len(words) > 1:
            sourced = script.parent / Path(words[1]).name
            if sourced.exists() and sourced not in seen:
                commands.extend(script_commands(sourced, seen))
            continue
        commands.append(words)
    return commands


def module_path(module: str) -> str | None:
    """The repository file that ``python -m module`` runs, or None if it is not ours."""
    base = ROOT / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__main__.py"):
        if candidate.exists():
            return candidate.relative_to(ROOT).as_posix()
    return None


def files_run_by(script: Path) -> set[str]:
    """Repository files that ``script`` (and what it sources) needs: what python runs, and
    the project and lock files that ``uv sync`` installs from."""
    needed: set[str] = set()
    for words in script_commands(script):
        for i, word in enumerate(words):
            is_python = re.fullmatch(r"(.*/)?python3?(\.\d+)?", word) is not None
            if is_python and i + 1 < len(words):
                target = words[i + 1]
                if target == "-m" and i + 2 < len(words):
                    found = module_path(words[i + 2])
                    if found:
                        needed.add(found)
                elif (ROOT / target).is_file():
                    needed.add(target)
            if re.fullmatch(r"(.*/)?uv", word) and words[i + 1 : i + 2] == ["sync"]:
                needed.add("pyproject.toml")
                if "--locked" in words or "--frozen" in words:
                    needed.add("uv.lock")
    return needed


def missing(required: set[str]) -> list[str]:
    """The required repository paths that the Dockerfile does not copy."""
    sources = copied_sources(DOCKERFILE.read_text())
    return sorted(path for path in required if not is_copied(path, sources))


def test_dockerfile_copies_every_installed_app_of_this_repository():
    """Each INSTALLED_APPS app that lives in this repository is copied into the image."""
    required = local_apps()
    assert {"chat", "api"} <= required, required  # the check itself finds the apps
    assert missing(required) == [], "add a COPY line for each to deploy/Dockerfile"


def test_dockerfile_copies_every_package_the_server_imports():
    """Each top-level package of this repository that the server imports is copied."""
    required = server_imports()
    assert {"config", "chat", "api"} <= required, required
    assert missing(required) == [], "add a COPY line for each to deploy/Dockerfile"


def test_dockerfile_copies_the_files_scripts_serve_runs():
    """What scripts/serve runs (manage.py, python -m modules, uv's lock) is in the image."""
    required = files_run_by(SERVE)
    assert {"manage.py", "config/server.py", "uv.lock"} <= required, required
    assert missing(required) == [], "add a COPY line for each to deploy/Dockerfile"


def test_dockerignore_keeps_what_the_dockerfile_copies():
    """No .dockerignore pattern drops a path that a COPY line names."""
    patterns = [
        line.strip().removeprefix("**/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    dropped = sorted(
        source
        for source in copied_sources(DOCKERFILE.read_text())
        for pattern in patterns
        if any(fnmatch.fnmatch(part, pattern) for part in Path(source).parts)
        or fnmatch.fnmatch(source, pattern)
    )
    assert dropped == [], ".dockerignore leaves these out of the build context"


def test_files_the_dockerfile_copies_serve_the_app_on_their_own(tmp_path):
    """Only the copied files, laid out as in the image, import the app and collect static."""
    app = tmp_path / "app"
    app.mkdir()
    for source in copied_sources(DOCKERFILE.read_text()):
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, app / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (app / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, app / source)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "collectstatic-only",  # as the Dockerfile's collectstatic step
        "DATA_DIR": str(tmp_path / "data"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "PYTHONPATH": "",
    }
    for command in (
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        [sys.executable, "-c", LIST_IMPORTS],
    ):
        done = subprocess.run(
            command, cwd=app, env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"{command[1:]} failed in the image's files:\n{done.stderr}"
