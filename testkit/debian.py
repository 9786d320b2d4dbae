"""Debian packages the tests drive for real (Chromium, nginx), installed when missing.

scripts/test calls the ``ensure_*`` functions before pytest: as root with
apt-get they install the package; otherwise they say what to install, and
the tests that need it skip saying the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def ensure_package(package: str, executable: Path, missing: str) -> str | None:
    """``executable``, installing Debian's ``package`` first when it is missing and we can."""
    if executable.exists():
        return str(executable)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(missing, file=sys.stderr, flush=True)
        return None
    print(f"{executable.name} is missing: installing Debian's {package} package", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-qq", "-o", "Dpkg::Use-Pty=0", "-o", "DPkg::Lock::Timeout=300"]
    for command in ([*apt, "update"], [*apt, "install", "-y", package]):
        # No questions (no stdin in CI); dpkg's progress goes nowhere, apt's errors are shown.
        done = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False
        )
        if done.returncode:
            break
    if not executable.exists():
        print(f"Installing {package} failed: {missing}", file=sys.stderr, flush=True)
        return None
    return str(executable)
