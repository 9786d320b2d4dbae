"""The packages and the image: the server's wheel serves chat on its own, the client's wheel
installs alone, and deploy/Dockerfile builds the one and installs only it.

The image cannot be built here (no Docker engine), so the slow tests do what its two
stages do: build the wheel with the build stage's own ``uv`` commands from a copy of only
what that stage copies, then install it with the locked requirements into a fresh virtual
environment and serve from there, with no checkout on the path.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps

import multichat_client
from config import settings as production_settings
from multichat_client import ChatClient, Message
from testkit import ROOT
from testkit.live import LiveServer, healthz

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"  # the build context is the repository root
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
WHEEL_PACKAGES = set(PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
UV = str(Path(sys.executable).with_name("uv"))  # the dev environment's pinned uv
# Building and installing packages is slow and does not depend on the database: pass 1 only.
ONCE = pytest.mark.once
# What an app ships beside its Python modules, all of which the wheel must carry.
APP_DATA = ("templates", "static", "migrations", "locale", "management")

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


def stages(dockerfile: str) -> list[list[tuple[str, str]]]:
    """The instructions of each stage, in order; each stage starts with its FROM."""
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            found.append([])
        found[-1].append((keyword, rest))
    return found


def copied_sources(stage: list[tuple[str, str]]) -> dict[str, str]:
    """Build-context path -> destination, for each COPY/ADD of ``stage`` from the repository."""
    sources: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword not in ("COPY", "ADD") or "--from" in rest:
            continue  # --from: another stage's files, not the repository's
        words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        words = [w for w in words if not w.startswith("--")]
        for source in words[:-1]:
            sources[os.path.normpath(source).rstrip("/")] = words[-1]
    return sources


def runs(stage: list[tuple[str, str]]) -> list[str]:
    """The shell commands of the stage's RUN instructions, ``&&`` chains split."""
    return [
        part.strip() for keyword, rest in stage if keyword == "RUN" for part in rest.split("&&")
    ]


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


def without_checkout(env: dict[str, str]) -> dict[str, str]:
    """``env`` with nothing that would put the checkout's code on an installed package's path."""
    return {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


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


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command``; return its output, failing the test with its stderr if it fails."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env=without_checkout(
            {**(os.environ if env is None else env), "UV_PYTHON_DOWNLOADS": "never"}
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{shlex.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def fresh_venv(path: Path, *requirements: str) -> Path:
    """A new virtual environment at ``path`` with ``requirements`` (uv pip install arguments)
    installed from uv's cache or the index; returns its bin directory."""
    run([UV, "venv", "--quiet", "--python", sys.executable, str(path)], cwd=path.parent)
    python = str(path / "bin" / "python")
    run([UV, "pip", "install", "--quiet", "--python", python, *requirements], cwd=path.parent)
    return path / "bin"


def installed(bin_dir: Path) -> set[str]:
    """The distribution names installed in the virtual environment of ``bin_dir``."""
    listing = run(
        [UV, "pip", "list", "--python", str(bin_dir / "python"), "--format", "json"],
        cwd=bin_dir,
    )
    return {entry["name"] for entry in json.loads(listing)}


@dataclass(frozen=True)
class Built:
    """What the Dockerfile's build stage leaves in /dist: the wheel and the locked requirements."""

    wheel: Path
    requirements: Path


@pytest.fixture(scope="module")
def server_build(tmp_path_factory) -> Built:
    """Run the build stage's uv commands on a copy of only the files it copies."""
    return build_server(tmp_path_factory.mktemp("build-context"), tmp_path_factory.mktemp("dist"))


def build_server(context: Path, dist: Path) -> Built:
    """The wheel and locked requirements the Dockerfile's build stage makes, in ``dist``."""
    build = stages(DOCKERFILE.read_text())[0]
    for source, destination in copied_sources(build).items():
        origin, target = ROOT / source, context / destination.removeprefix("./")
        if destination.endswith("/") and origin.is_file():
            target = target / origin.name
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
    uv_commands = [shlex.split(command) for command in runs(build) if command.startswith("uv ")]
    assert len(uv_commands) >= 2, "the build stage exports the lock and builds the wheel with uv"
    for command in uv_commands:
        run([UV, *(word.replace("/dist", str(dist)) for word in command[1:])], cwd=context)
    wheels = sorted(dist.glob("multichat-*.whl"))
    assert len(wheels) == 1, sorted(p.name for p in dist.iterdir())
    return Built(wheel=wheels[0], requirements=dist / "requirements.txt")


def test_the_images_final_stage_installs_the_wheel_and_copies_no_source():
    """The final stage takes only the build stage's wheel and requirements, installs both, and
    runs the wheel's console scripts: no repository file lands in the image."""
    final = stages(DOCKERFILE.read_text())[-1]
    assert copied_sources(final) == {}, "the final stage copies from the build stage only"
    commands = runs(final)
    assert any(
        re.search(r"pip install .*--require-hashes.* -r \S*requirements\.txt", c) for c in commands
    ), "the locked dependencies are installed hash-checked"
    assert any(re.search(r"pip install .*--no-deps \S*multichat-\*\.whl", c) for c in commands)
    assert any(
        c.startswith("SECRET_KEY=") and "multichat-admin collectstatic" in c for c in commands
    )
    cmd = [json.loads(rest) for keyword, rest in final if keyword == "CMD"][-1]
    assert cmd == ["multichat-server"]
    scripts = PYPROJECT["project"]["scripts"]
    assert scripts["multichat-server"] == "config.server:main"
    assert scripts["multichat-admin"] == "config.manage:main"


def test_the_build_stage_copies_what_the_wheel_is_built_from():
    """pyproject.toml, the lock, the readme and every package the wheel holds are copied."""
    sources = set(copied_sources(stages(DOCKERFILE.read_text())[0]))
    needed = {"pyproject.toml", "uv.lock", "README.md", "client/pyproject.toml", *WHEEL_PACKAGES}
    assert sorted(needed - sources) == [], "add a COPY line for each to deploy/Dockerfile"


def test_the_wheel_lists_every_installed_app_and_package_the_server_imports():
    """pyproject's wheel packages hold each local INSTALLED_APPS app and each package that a
    running server imports from this repository."""
    required = local_apps() | server_imports()
    assert {"config", "chat", "api", "people"} <= required, required  # the check finds them
    assert sorted(required - WHEEL_PACKAGES) == [], "add each to [tool.hatch...wheel] packages"


def test_dockerignore_keeps_what_the_dockerfile_copies():
    """No .dockerignore pattern drops a path that a COPY line names."""
    patterns = [
        line.strip().removeprefix("**/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    dropped = sorted(
        source
        for stage in stages(DOCKERFILE.read_text())
        for source in copied_sources(stage)
        for pattern in patterns
        if any(fnmatch.fnmatch(part, pattern) for part in Path(source).parts)
        or fnmatch.fnmatch(source, pattern)
    )
    assert dropped == [], ".dockerignore leaves these out of the build context"


@ONCE
def test_the_server_wheel_carries_each_apps_files_and_no_tests(server_build):
    """Every tracked template, static, migration, locale and command file of each app is in
    the wheel; the tests, the test kit, the benchmarks and the client are not."""
    names = set(zipfile.ZipFile(server_build.wheel).namelist())
    tops = {name.split("/", 1)[0] for name in names if ".dist-info/" not in name}
    assert tops == WHEEL_PACKAGES
    tracked = run(["git", "ls-files", "--", *sorted(local_apps())], cwd=ROOT).split()
    data = [p for p in tracked if set(Path(p).parts[1:-1]) & set(APP_DATA)]
    assert len(data) > 50, data  # the listing itself works
    assert sorted(set(data) - names) == [], "the wheel lacks these app files"
    assert "chat/locale/de/LC_MESSAGES/django.mo" in names
    assert [n for n in names if "/tests/" in n or n.endswith("test_settings.py")] == []


@ONCE
def test_the_server_wheel_installed_as_in_the_image_serves_chat(server_build, tmp_path):
    """Installed with the locked requirements into a fresh venv, the wheel's multichat-admin
    migrates and collects static files and its multichat-server serves health, pages,
    translations, static files and a socket post round trip, with no checkout on its path."""
    bin_dir = fresh_venv(
        tmp_path / "venv", "--require-hashes", "--no-deps", "-r", str(server_build.requirements)
    )
    run([UV, "pip", "install", "--quiet", "--python", str(bin_dir / "python"), "--no-deps",
         str(server_build.wheel)], cwd=tmp_path)  # fmt: skip
    (tmp_path / "data").mkdir()
    live = LiveServer(
        data_dir=str(tmp_path / "data"),
        extra_env={"STATIC_ROOT": str(tmp_path / "static")},
        command=[str(bin_dir / "multichat-server")],
        cwd=tmp_path,
    )
    live.env = without_checkout(live.env)
    where = run([str(bin_dir / "python"), "-c", "import chat; print(chat.__file__)"],
                cwd=tmp_path, env=live.env)  # fmt: skip
    assert Path(where.strip()).is_relative_to(tmp_path / "venv"), where
    for args in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"]):
        run([str(bin_dir / "multichat-admin"), *args], cwd=tmp_path, env=live.env)
    # The users, room and token come from the checkout's test-only testkit command, on the
    # database that the wheel's migrations made.
    made = live.seed(users=["alice"], rooms=["Wheel room"], tokens=["alice"])
    room, token = made.rooms["Wheel room"], made.tokens["alice"]
    live.start(timeout=60)
    try:
        status, body = healthz(live.url)
        assert (status, body.get("status")) == (200, "ok"), body
        with urllib.request.urlopen(live.url + "login/", timeout=10) as response:
            page = response.read().decode()
        assert 'name="password"' in page
        stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page)
        assert stylesheet, "the login page links no stylesheet"
        with urllib.request.urlopen(live.url + stylesheet.group(1)[1:], timeout=10) as response:
            assert response.status == 200  # collected from the wheel, served by ServeStatic
        german = urllib.request.Request(live.url + "jsi18n/", headers={"Accept-Language": "de"})
        with urllib.request.urlopen(german, timeout=10) as response:
            assert "Reconnecting" in response.read().decode()  # the wheel's chat/locale

        async def round_trip() -> Message:
            async with ChatClient(live.url, token) as chat:
                await chat.join(room)
                await chat.send(room, "served from the wheel")
                async with asyncio.timeout(20):
                    async for event in chat:
                        if isinstance(event, Message) and event.message == "served from the wheel":
                            return event
            raise AssertionError("the client stopped before its post came back")

        echoed = asyncio.run(round_trip())
        assert (echoed.username, echoed.seq) == ("alice", 1)
    finally:
        live.stop()


@ONCE
def test_the_client_wheel_installs_alone_and_its_cli_talks_to_a_live_server(tmp_path):
    """The client's wheel in a fresh venv brings only websockets (no Django); its `multichat`
    command sends to a live server and tails the post back over the socket."""
    dist = tmp_path / "dist"
    run([UV, "build", "--quiet", "--wheel", "--package", "multichat-client", "--out-dir",
         str(dist)], cwd=ROOT)  # fmt: skip
    (wheel,) = dist.glob("multichat_client-*.whl")
    assert wheel.name.startswith(f"multichat_client-{multichat_client.__version__}-")
    bin_dir = fresh_venv(tmp_path / "venv", str(wheel))
    assert installed(bin_dir) == {"multichat-client", "websockets"}
    assert "tail" in run([str(bin_dir / "multichat"), "--help"], cwd=tmp_path)
    version = run([str(bin_dir / "multichat"), "--version"], cwd=tmp_path)
    assert version.strip() == f"multichat {multichat_client.__version__}"

    live = LiveServer().prepare()
    made = live.seed(users=["alice"], rooms=["Client room"], tokens=["alice"])
    env = without_checkout(
        {
            **{k: v for k, v in os.environ.items() if not k.startswith("MULTICHAT_")},
            "HOME": str(tmp_path),
            "MULTICHAT_CONFIG": str(tmp_path / "absent.toml"),
            "MULTICHAT_URL": live.url,
            "MULTICHAT_TOKEN": made.tokens["alice"],
            "PYTHONUNBUFFERED": "1",
        }
    )
    live.start()
    try:
        sent = run([str(bin_dir / "multichat"), "send", "Client room", "from the client wheel"],
                   cwd=tmp_path, env=env)  # fmt: skip
        assert sent.strip() == "sent to Client room as #1", sent

        async def tail_until_the_post() -> dict[str, object]:
            tail = await asyncio.create_subprocess_exec(
                str(bin_dir / "multichat"), "tail", "Client room", "--since", "0", "--json",
                cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert tail.stdout is not None
            try:
                async with asyncio.timeout(30):
                    while line := await tail.stdout.readline():
                        frame = json.loads(line)
                        if frame.get("message") == "from the client wheel":
                            return dict(frame)
                raise AssertionError("tail ended without the post")
            finally:
                tail.terminate()
                await tail.wait()

        frame = asyncio.run(tail_until_the_post())
        assert (frame["username"], frame["seq"]) == ("alice", 1)
    finally:
        live.stop()
