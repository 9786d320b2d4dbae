"""The search benchmark's code at a small size (the 1,000,000-message run is not a test)."""

import json
import subprocess
import sys
import uuid

from bench.report import table
from bench.search import percentiles, vocabulary
from testkit import ROOT
from testkit.servers import postgres_base_url


def test_vocabulary_is_the_same_for_a_seed_and_distinct():
    """The fixed-seed vocabulary repeats exactly, with no duplicate word."""
    words = vocabulary(size=500)
    assert words == vocabulary(size=500)
    assert len(set(words)) == 500


def test_percentiles_in_milliseconds():
    """p50/p95/p99/max of seconds, in milliseconds."""
    figures = percentiles([i / 1000 for i in range(1, 101)])
    assert (figures["p50_ms"], figures["p99_ms"], figures["max_ms"]) == (51.0, 100.0, 100.0)


def test_search_benchmark_runs_small_and_reports_every_kind(tmp_path):
    """bench.search fills, measures every query kind (and REST), drops its database."""
    base = postgres_base_url()
    if base is None:
        database = f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    else:
        database = base.rsplit("/", 1)[0] + f"/mc_search_smoke_{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-m", "bench.search", "--database", database,
         "--messages", "3000", "--rooms", "20", "--users", "10", "--queries", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["messages"] == 3000
    kinds = {step["step"] for step in result["steps"]}
    assert {"common word", "rare word", "phrase (in the text)", "common word, REST"} <= kinds
    common = next(s for s in result["steps"] if s["step"] == "common word")
    assert common["mean_hits"] == 20  # a full first page: the fill stored searchable text
    assert "common, room filter" in table({"search": {"production": result}})
    if base is None:
        assert not (tmp_path / "bench.sqlite3").exists()
