"""The benchmark's ``restart`` scenario, run small against real PostgreSQL, Redis and servers."""

from __future__ import annotations

import pytest

from bench.common import Bench, config_named
from bench.report import table
from bench.run import parse_arguments, sizes
from bench.scenarios import ON_REQUEST, restart
from testkit.servers import postgres_base_url

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def test_restart_runs_when_named_with_5000_sockets_or_the_given_number():
    """Only when named (it needs the production server); --sockets sets its size."""
    assert "restart" in ON_REQUEST
    assert "restart" not in parse_arguments([]).scenarios
    assert sizes(parse_arguments(["--scenarios", "restart"]))["restart"]["sockets"] == 5000
    chosen = sizes(parse_arguments(["--scenarios", "restart", "--sockets", "50"]))
    assert chosen["restart"]["sockets"] == 50


async def test_restart_scenario_brings_every_socket_back_with_every_post(redis_server):
    """50 sockets through a SIGTERM: all closed 1012, all back, nothing lost, twice or reordered."""
    base = postgres_base_url()
    if base is None:
        pytest.skip("needs PostgreSQL (runs in the PostgreSQL pass of scripts/test)")
    bench = Bench(config_named("production"), base, redis_server.url, None, 1)
    result = await restart(bench, sockets=50, per_room=10, rate=20.0, window=2.0)
    assert result["closed_1012"] == 50 and result["closed_other"] == 0, result
    assert result["old_exit_status"] == 0
    assert result["back"] == 50 and result["failed"] == 0, result
    assert result["posted"] > 0
    assert (result["lost"], result["duplicated"], result["reordered"]) == (0, 0, 0), result
    assert 0 < result["joined_s"] <= result["all_back_s"] < 60
    assert result["new_cpu_s"] >= result["new_cpu_after_answer_s"] > 0
    assert "restart" in table({"restart": {"production": result}})
