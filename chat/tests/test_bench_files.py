"""The benchmark's attachments: the upload scenario and fanout --files, small, on real servers."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bench.common import Bench, config_named
from bench.files import WIDTH, png_image, takes_uploads
from bench.report import files_ratios, headline, table
from bench.run import parse_arguments, sizes
from bench.scenarios import ON_REQUEST, fanout, upload
from testkit.servers import postgres_base_url


def test_the_benchmark_image_is_a_1_mb_png_the_same_for_a_seed():
    """png_image: 1280x720, about 1 MB (so thumbnails are really made), the same bytes per seed."""
    first = png_image(20)
    assert first == png_image(20) != png_image(21)
    assert 0.9e6 < len(first) < 1.1e6
    assert Image.open(io.BytesIO(first)).size == (WIDTH, 720)


def test_upload_runs_when_named_and_files_reach_fanout():
    """upload is on request; --clients, --upload-seconds and --files reach the scenarios."""
    assert "upload" in ON_REQUEST
    assert "upload" not in parse_arguments([]).scenarios
    chosen = sizes(parse_arguments(["--scenarios", "upload", "--clients", "3"]))
    assert chosen["upload"] == {"clients": 3, "seconds": 10.0}
    quick = sizes(parse_arguments(["--quick", "--files", "1", "--upload-seconds", "2"]))
    assert (quick["fanout"]["files"], quick["upload"]["seconds"]) == (1, 2.0)
    assert not takes_uploads(Bench(config_named("tutorial"), "", None))
    assert not takes_uploads(Bench(config_named("raw"), "", None))


def test_files_ratios_compare_each_attached_step_with_the_plain_one_of_its_rate():
    """CPU per delivery with files / without, per rate, in either order; a lone step: none."""
    steps = [
        {"step": "20 msg/s", "rate": 20, "files": 0, "cpu_us_per_delivery": 10.0},
        {"step": "20 msg/s +1 file", "rate": 20, "files": 1, "cpu_us_per_delivery": 11.0},
        {"step": "60 msg/s +1 file", "rate": 60, "files": 1, "cpu_us_per_delivery": 8.0},
        {"step": "60 msg/s", "rate": 60, "files": 0, "cpu_us_per_delivery": 8.0},
        {"step": "90 msg/s", "rate": 90, "files": 0, "cpu_us_per_delivery": 7.0},
    ]
    assert files_ratios({"steps": steps}) == {"20 msg/s +1 file": 1.1, "60 msg/s +1 file": 1.0}


def bench_on_postgres(redis_server) -> Bench:
    """The production configuration on this run's PostgreSQL and Redis (skip without them)."""
    base = postgres_base_url()
    if base is None:
        pytest.skip("needs PostgreSQL (runs in the PostgreSQL pass of scripts/test)")
    return Bench(config_named("production"), base, redis_server.url, None, 1)


@pytest.mark.redis
@pytest.mark.postgres
async def test_upload_scenario_uploads_thumbnails_and_measures(redis_server):
    """2 clients for 2 s: uploads taken, none refused, thumbnails made, CPU per upload measured."""
    result = await upload(bench_on_postgres(redis_server), clients=2, seconds=2.0, images=2)
    assert result["uploads"] > 0 and result["errors"] == 0, result
    assert result["thumbnail"] is True
    assert 0.9e6 < result["image_bytes"] < 1.1e6
    assert result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["cpu_ms_per_upload"] > 0
    assert "upload" in table({"upload": {"production": result}})
    assert headline("upload", result)["uploads/s"] == result["uploads_per_s"]


@pytest.mark.redis
@pytest.mark.postgres
async def test_fanout_with_files_alternates_plain_and_attached_steps(redis_server):
    """--files 1: each rate twice, with and without an attachment per message, the order
    flipping from round to round; nothing lost."""
    bench = bench_on_postgres(redis_server)
    bench.round = 2
    flipped = await fanout(bench, members=3, rates=[4.0], seconds=1.0, files=1)
    assert [step["files"] for step in flipped["steps"]] == [1, 0]
    bench.round = 1
    result = await fanout(bench, members=5, rates=[5.0], seconds=1.0, files=1)
    labels = [(step["step"], step["files"]) for step in result["steps"]]
    assert labels == [("5 msg/s", 0), ("5 msg/s +1 file", 1)]
    for step in result["steps"]:
        assert (step["lost"], step["duplicated"], step["reordered"], step["errors"]) == (
            0,
            0,
            0,
            0,
        ), step
        assert step["delivered"] == 25
        assert step["cpu_us_per_post"] > step["cpu_us_per_delivery"] > 0
    plain, attached = result["steps"]
    assert attached["bytes_per_delivery"] > plain["bytes_per_delivery"] + 150  # the FileInfo
    assert list(files_ratios(result)) == ["5 msg/s +1 file"]
