"""The test command behind scripts/test: lint, format, checks, then pytest on both set-ups.

Pass 1: SQLite and the in-process channel layer (the embedded default);
tests marked ``redis`` use a real Redis. Pass 2: PostgreSQL and Redis as the
channel layer (the production set-up), when PostgreSQL is reachable; if it
is not, this says so and that pass is skipped. Browser tests run in pass 1,
and those also marked ``postgres`` (skipped there) in pass 2. Before pytest,
Debian's Chromium is looked for and, when missing, installed if this is root
with apt-get (testkit.browser); without it the browser tests skip, saying
what to install.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: find testkit

from testkit import ROOT
from testkit.browser import ensure_chromium
from testkit.nginx import ensure_nginx
from testkit.s3 import weed_binary
from testkit.servers import ensure_redis, port_open

DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/multichat"
RESULTS = ROOT / "var" / "test-results"


def counts(report: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) from a pytest JUnit XML report; all zero if it is missing."""
    if not report.exists():
        return 0, 0, 0
    total = failed = skipped = 0
    for suite in ET.parse(report).getroot().iter("testsuite"):
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return total - failed - skipped, failed, skipped


def banner(text: str) -> None:
    """Print a step heading."""
    print(f"\n==> {text}", flush=True)


def run(cmd: list[str], env: dict[str, str] | None = None) -> int:
    """Run a command in the project root; return its exit code."""
    return subprocess.call(cmd, cwd=ROOT, env=env)


def postgres_url() -> str | None:
    """DATABASE_URL if given, else the local PostgreSQL when it accepts connections."""
    given = os.environ.get("DATABASE_URL")
    if given:
        return given
    return DEFAULT_PG_URL if port_open("127.0.0.1", 5432) else None


def main(argv: list[str]) -> int:
    """Run every check; return non-zero if any failed."""
    py = sys.executable
    failures: list[str] = []
    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    base_env["DJANGO_SETTINGS_MODULE"] = "config.test_settings"

    banner("ruff check")
    if run([py, "-m", "ruff", "check", "."]) != 0:
        failures.append("ruff check")
    banner("ruff format --check")
    if run([py, "-m", "ruff", "format", "--check", "."]) != 0:
        failures.append("ruff format --check")
    banner("mypy (strict on the modules listed in pyproject.toml)")
    if run([py, "-m", "mypy"], env=base_env) != 0:
        failures.append("mypy")
    banner("makemigrations --check")
    if run([py, "manage.py", "makemigrations", "--check", "--dry-run"], env=base_env) != 0:
        failures.append("makemigrations --check")

    RESULTS.mkdir(parents=True, exist_ok=True)
    for old in RESULTS.glob("*.xml"):
        old.unlink()
    banner("check --deploy (production settings from the environment)")
    deploy_env = {
        **base_env,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "deploy-check-" + "k" * 60,
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "SECURE_HSTS_PRELOAD": "1",
    }
    if run([py, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env=deploy_env):
        failures.append("check --deploy")

    banner("Chromium for the browser tests (Debian's package)")
    chromium = ensure_chromium()
    print(f"Chromium: {chromium or 'none, so the browser tests skip'}", flush=True)
    banner("nginx for the proxy tests (Debian's package; deploy/nginx.conf in front of the app)")
    nginx = ensure_nginx()
    print(f"nginx: {nginx or 'none, so the proxy tests skip'}", flush=True)
    weed = weed_binary()  # started per test module (chat/tests/test_files_s3.py)
    print(f"S3 server (SeaweedFS): {weed or 'no weed, so the S3 tests skip'}", flush=True)

    redis = ensure_redis()
    print(f"Redis for the tests: {redis.how}", flush=True)
    base_env["TEST_REDIS_URL"] = redis.url
    try:
        banner("pytest, pass 1: SQLite + in-process channel layer")
        if run([py, "-m", "pytest", f"--junitxml={RESULTS / 'sqlite.xml'}", *argv], env=base_env):
            failures.append("pytest on SQLite")

        pg = postgres_url()
        if pg is None:
            banner(
                "pytest, pass 2 skipped: no PostgreSQL at 127.0.0.1:5432 and no DATABASE_URL; "
                "the suite ran on SQLite only"
            )
        else:
            banner(f"pytest, pass 2: PostgreSQL ({pg}) + Redis channel layer ({redis.url})")
            env = {**base_env, "DATABASE_URL": pg, "REDIS_URL": redis.url}
            junit = f"--junitxml={RESULTS / 'postgres.xml'}"
            # The browser tests ran in pass 1, but for those that need PostgreSQL; so did the
            # tests that do not depend on the database or the channel layer (marked once).
            marks = "(not browser and not once) or postgres"
            if run([py, "-m", "pytest", "-m", marks, junit, *argv], env=env):
                failures.append("pytest on PostgreSQL + Redis")
    finally:
        redis.stop()

    passed = failed = skipped = 0
    for report in RESULTS.glob("*.xml"):
        p, f, s = counts(report)
        passed, failed, skipped = passed + p, failed + f, skipped + s
    if failures:
        print(f"\nFAILED: {', '.join(failures)}", flush=True)
    # The plain closing line that CI reads, over both passes.
    print(f"\ntests: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
