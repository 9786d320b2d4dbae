"""The multichat command's own answers, which need no server."""

import subprocess
import sys
import tomllib
from pathlib import Path

import multichat_client

CLIENT = Path(__file__).resolve().parents[1]


def multichat(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m multichat_client ARGS`` (what the ``multichat`` entry point runs)."""
    return subprocess.run(
        [sys.executable, "-m", "multichat_client", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_is_the_packages_version():
    """`multichat --version` prints the version that the package's metadata is built from."""
    done = multichat("--version")
    version = multichat_client.__version__
    assert (done.returncode, done.stdout.strip()) == (0, f"multichat {version}")
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"]  # read from multichat_client.__version__, not here


def test_without_a_command_the_cli_shows_its_usage():
    """No COMMAND: exit status 2, the usage line, and that a COMMAND is required."""
    done = multichat()
    assert done.returncode == 2
    assert done.stderr.startswith("usage: multichat ")
    assert "required: COMMAND" in done.stderr
