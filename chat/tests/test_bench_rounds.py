"""The benchmark's rounds (medians, worst faults), the reconnect accounting and sizes."""

from __future__ import annotations

from bench.common import Usage
from bench.loadgen import Member, Tally
from bench.report import headline, table
from bench.rounds import median_result
from bench.run import parse_arguments, sizes
from bench.scenarios import SCENARIOS, resume_faults


def step(label: str, delivered: int, p99: float, lost: int = 0) -> dict:
    """A stepped scenario's step, with the few fields the merge looks at."""
    return {"step": label, "delivered_per_s": delivered, "p99_ms": p99, "lost": lost,
            "wait_ended": "all"}  # fmt: skip


def test_rounds_give_each_figure_its_median_and_each_fault_its_worst_round():
    """p99 and rates are medians; a loss in one round of three is reported, not hidden."""
    rounds = [
        {"joins_per_s": 300.0, "lost": 0, "duplicated": 0, "seconds": 30, "first_error": None},
        {"joins_per_s": 250.0, "lost": 2, "duplicated": 0, "seconds": 40, "first_error": "x"},
        {"joins_per_s": 280.0, "lost": 0, "duplicated": 1, "seconds": 33, "first_error": None},
    ]
    merged = median_result(rounds)
    assert merged == {
        "joins_per_s": 280.0, "lost": 2, "duplicated": 1, "seconds": 33, "first_error": "x"
    }  # fmt: skip


def test_steps_are_merged_by_label_and_a_step_few_rounds_reached_says_so():
    """Rounds that stopped early leave the last step to the others, marked with their count."""
    rounds = [
        {"steps": [step("20 msg/s", 100, 10.0), step("60 msg/s", 300, 2000.0)]},
        {"steps": [step("20 msg/s", 100, 14.0), step("60 msg/s", 290, 50.0, lost=3),
                   {**step("100 msg/s", 400, 3000.0), "wait_ended": "limit"}]},
        {"steps": [step("20 msg/s", 100, 12.0), step("60 msg/s", 280, 40.0)]},
    ]  # fmt: skip
    steps = median_result(rounds)["steps"]
    assert [s["step"] for s in steps] == ["20 msg/s", "60 msg/s", "100 msg/s (1/3 rounds)"]
    assert (steps[0]["p99_ms"], steps[1]["p99_ms"], steps[1]["delivered_per_s"]) == (12, 50, 290)
    assert steps[1]["lost"] == 3
    assert steps[2]["wait_ended"] == "limit"


def test_a_failed_round_is_left_out_and_counted():
    """Two good rounds and a failed one: the median of the two, and the error kept."""
    merged = median_result([{"seconds": 2.0}, {"error": "RuntimeError: boom"}, {"seconds": 3.0}])
    assert merged == {"seconds": 2.5, "failed_rounds": 1, "round_errors": ["RuntimeError: boom"]}
    assert median_result([{"error": "a"}, {"error": "b"}]) == {"error": "a"}


def test_rounds_default_to_three_for_full_runs_and_one_for_quick_ones():
    """--rounds overrides both; the default configurations include raw."""
    assert parse_arguments([]).rounds == 3
    assert parse_arguments(["--quick"]).rounds == 1
    assert parse_arguments(["--quick", "--rounds", "2"]).rounds == 2
    assert [c.name for c in parse_arguments([]).configs] == ["production", "tutorial", "raw"]
    assert parse_arguments(["--configs", "raw"]).configs[0].services is False


def test_reconnect_is_a_scenario_with_full_and_quick_sizes_and_its_own_options():
    """10,000 sockets and 200 posts in full, smaller with --quick, the options win."""
    assert "reconnect" in SCENARIOS
    assert sizes(parse_arguments([]))["reconnect"] == {"sockets": 10_000, "posts": 200}
    assert sizes(parse_arguments(["--quick"]))["reconnect"]["sockets"] < 10_000
    chosen = sizes(parse_arguments(["--reconnect-sockets", "42", "--reconnect-posts", "7"]))
    assert chosen["reconnect"] == {"sockets": 42, "posts": 7}


def test_resume_faults_expect_every_seq_after_each_sockets_since():
    """A socket back from since=3 expects 4..6; one from since=6 expects nothing."""
    behind, current, quiet = Member(Tally()), Member(Tally()), Member(Tally())
    for member, since in ((behind, 3), (current, 6), (quiet, 0)):
        member.rooms, member.base = [1 if member is not quiet else 2], {}
        member.base[member.rooms[0]] = since
    behind.seqs[1] = [4, 6, 6]  # 5 lost, 6 twice
    current.seqs[1] = [5]  # at or below its since: not counted
    assert resume_faults([behind, current, quiet], {1: 6}) == (1, 1, 0)
    behind.seqs[1] = [5, 4, 6]
    assert resume_faults([behind], {1: 6}) == (0, 0, 1)


def test_cpu_usage_counts_a_postgres_backend_that_started_between_snapshots_whole():
    """Server and Redis by difference; a backend new since the first snapshot: all its time."""
    before = Usage(server=1.0, redis=0.5, postgres={10: 2.0})
    after = Usage(server=1.5, redis=0.75, postgres={10: 2.5, 11: 0.25})
    spent = after.spent_since(before)
    assert (spent.server, spent.redis, spent.postgres) == (0.5, 0.25, 0.75)
    assert Usage(1.0, None, None).spent_since(Usage(0.0, None, None)).redis is None


def test_noise_is_the_share_of_core_0_that_neither_the_server_nor_its_redis_took():
    """Core 0 busy 1.5 s of 2 s, the server 0.5 s and Redis 0.5 s of it: others took 25%."""
    before = Usage(server=1.0, redis=1.0, postgres=None, core0=10.0, wall=100.0)
    after = Usage(server=1.5, redis=1.5, postgres=None, core0=11.5, wall=102.0)
    assert after.spent_since(before).others_pct == 25.0


def test_the_reconnect_row_and_headline():
    """The table shows the time until all are back and the CPU per reconnect."""
    result = {
        "sockets": 10_000, "posts": 200, "posts_per_socket": 2.0, "reconnected": 10_000,
        "failed": 0, "retries": 0, "joined_s": 30.0, "all_back_s": 30.5,
        "reconnects_per_s": 333.3, "cpu_ms_per_join": 3.1, "redis_ms_per_join": 0.1,
        "pg_ms_per_join": 0.4, "lost": 0, "duplicated": 0, "reordered": 0, "dropped": 0,
    }  # fmt: skip
    lines = table({"reconnect": {"production": result}}).splitlines()
    assert "all back s" in lines[1]
    assert lines[2].split()[7:10] == ["30.0", "30.5", "333.3"]
    assert headline("reconnect", result) == {
        "all back s": 30.5, "reconnects/s": 333.3, "server cpu ms/reconnect": 3.1
    }  # fmt: skip
