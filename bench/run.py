"""The benchmark of the performance issue: every scenario against every configuration.

    .venv/bin/python -m bench.run [--scenarios fanout,rooms,idle,resume,storm,reconnect]
        [--configs production,tutorial,raw] [--rounds 3] [--json bench-results.json] [--quick]
    scripts/bench --quick          # the same, after making .venv match uv.lock

Scenarios (bench/scenarios.py): ``fanout`` (one room, M members, one sender
at stepped rates), ``rooms`` (R rooms of M members, everyone sending at
stepped rates), ``idle`` (N sockets connect and join at once: time, CPU and
memory per socket), ``resume`` (joins with since=0 replaying N messages),
``storm`` (N members of one room connect and join at once while one posts:
the time until every socket's presence list holds everyone, the presence
frames and bytes per socket, server CPU, and every message delivered),
``reconnect`` (N joined sockets, 100 a room, all drop; P posts are made
meanwhile; all reconnect with ``since`` at once: the time until every
socket has every post it missed, CPU per reconnect + join, faults),
``restart`` (only when named, production only: N sockets joined on one process,
100 a room, while one more posts 20 msg/s; SIGTERM, a new process on the same
port; every socket comes back at a uniformly random moment of the window the
close reason names (``--restart-window``: another) and resumes with
``since``: the old process's exit time, the time until every socket has
every post, the new process's CPU, faults), ``search`` (only when named:
full-text search latency over 1,000,000 stored messages, bench/search.py;
add ``--configs production``, it needs no other), ``upload`` (only when named,
production only: N clients upload 1 MB PNG images back to back for S
seconds: uploads/s, p50/p99 latency, server CPU per upload; bench/files.py).
``--files N`` makes ``fanout`` run each rate twice, alternating: plain
messages, then messages with N image attachments each, so the CPU per
delivery of both compares on one server.
Configurations: ``production`` (python -m config.server: uvicorn, pub/sub
layer), ``tutorial`` (daphne serving bench/tutorial.py, the list-based
``core`` layer) and ``raw`` (bench/raw.py: a picows broadcast server that
speaks the same frames and stores nothing, keeping posts in memory: the
language's limit); also SERVER:LAYER, e.g. ``daphne:pubsub``, for the
production application on another ASGI server (granian and hypercorn must
be installed first). production and tutorial use PostgreSQL and Redis:
every (configuration, scenario) gets a fresh server, pinned to core 0, a
throwaway database and a throwaway redis-server pinned to core 0 beside it
(``--redis URL``: use that Redis instead, unpinned and unmeasured). This
process runs on core 1. A stepped scenario stops at the first step whose
p99 is over 1 s. The table goes to stdout, the same results as JSON to
``--json`` (default bench-results.json in the current directory). ``--quick``
runs small sizes, one round (a few minutes per configuration): use it to
try things.

Rounds: each (configuration, scenario) runs ``--rounds`` times (3; 1 with
``--quick``), the configurations alternating round by round; the table
shows each figure's median over the rounds and each fault count (lost,
duplicated, reordered, errors, dropped, failed) from the worst round; the
JSON keeps every round under ``rounds`` (bench/rounds.py).

Full sizes: fanout 500 members at 2, 5, 20, 60, 100, 120 msg/s; rooms 100 x 10 at
0.1, 0.25, 0.5, 1, 1.5 msg/s per member (the low steps are for the tutorial); 5 s a
step; idle 10,000 sockets; resume 1,000 messages; storm 500 members, 10
msg/s posted during it; reconnect 10,000 sockets, 200 posts (all rooms
together, round-robin). Latency runs from a message's *scheduled* send time
to its arrival. Lost: never arrived (after waiting until 2 s pass without a
frame, 30 s at most); duplicated: arrived twice; reordered: arrived after a
higher seq. CPU is user+system time from /proc over the step: the server's
processes (``cpu``), the pinned redis-server (``redis``), and the PostgreSQL
backends serving the scenario's database (``pg``, their pids from
pg_stat_activity; PostgreSQL must run on this machine), per delivery, per
stored post or per connect + join. The ratios compare the first
configuration with the others: the best sustained delivered rate (the
highest step with p99 <= 100 ms and nothing lost) and server CPU per
delivery at the first step (the same offered load), connects + joins per
second and CPU per join, the reconnect storm's time and CPU.
Comparing ASGI servers and layers as docs/architecture.md did:

    .venv/bin/python -m bench.run --scenarios fanout --members 200 --rates 40,100 \
        --configs uvicorn:pubsub,daphne:pubsub,uvicorn:core
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import traceback

from bench.common import Bench, add_common_arguments, config_named
from bench.report import NOISE_NOTE, figure, files_ratios, ratio_lines, ratios, table
from bench.rounds import median_result
from bench.scenarios import ON_REQUEST, SCENARIOS
from testkit import ROOT

FULL = {
    "fanout": {"members": 500, "rates": [2, 5, 20, 60, 100, 120], "seconds": 5.0},
    "rooms": {"rooms": 100, "members": 10, "rates": [0.1, 0.25, 0.5, 1.0, 1.5], "seconds": 5.0},
    "idle": {"sockets": 10_000},
    "resume": {"messages": 1000},
    "storm": {"members": 500, "rate": 10.0},
    "reconnect": {"sockets": 10_000, "posts": 200},
    "restart": {"sockets": 5000},
    "search": {"messages": 1_000_000, "queries": 200},
    "upload": {"clients": 4, "seconds": 10.0},
}
QUICK = {
    "fanout": {"members": 100, "rates": [20, 60], "seconds": 2.0},
    "rooms": {"rooms": 20, "members": 5, "rates": [0.5, 1.0], "seconds": 2.0},
    "idle": {"sockets": 500, "settle": 1.0},
    "resume": {"messages": 200},
    "storm": {"members": 100, "rate": 10.0},
    "reconnect": {"sockets": 500, "posts": 20},
    "restart": {"sockets": 200},
    "search": {"messages": 20_000, "queries": 20},
    "upload": {"clients": 2, "seconds": 3.0},
}
ROUNDS = 3  # full runs; --quick: 1


def numbers(text: str) -> list[float]:
    """A comma-separated list of numbers."""
    return [float(part) for part in text.split(",") if part.strip()]


def names(text: str) -> list[str]:
    """A comma-separated list of names."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenarios",
        type=names,
        default=[name for name in SCENARIOS if name not in ON_REQUEST],
        help="comma-separated, of: "
        + ",".join(SCENARIOS)
        + " (restart, search, upload: only when named)",
    )
    parser.add_argument(
        "--configs",
        type=names,
        default=["production", "tutorial", "raw"],
        help="comma-separated: production, tutorial, raw, or SERVER:LAYER "
        "(default: %(default)s; the first is compared with the others)",
    )
    parser.add_argument("--json", default="bench-results.json", help="default: %(default)s")
    parser.add_argument("--quick", action="store_true", help="small sizes, short steps, 1 round")
    parser.add_argument("--rounds", type=int,
                        help=f"run each (configuration, scenario) N times and report medians "
                             f"(default {ROUNDS}, 1 with --quick)")  # fmt: skip
    parser.add_argument("--seconds", type=float, help="length of each step (fanout, rooms)")
    parser.add_argument("--members", type=int, help="fanout: members of the room")
    parser.add_argument("--rates", type=numbers, help="fanout: sender rates, msg/s, e.g. 20,60")
    parser.add_argument("--files", type=int,
                        help="fanout: run each rate also with N files per message")  # fmt: skip
    parser.add_argument("--rooms", type=int, help="rooms: number of rooms")
    parser.add_argument("--room-members", type=int, help="rooms: members per room")
    parser.add_argument("--member-rates", type=numbers, help="rooms: msg/s per member, e.g. 0.5,1")
    parser.add_argument("--sockets", type=int,
                        help="idle, restart: sockets to connect")  # fmt: skip
    parser.add_argument("--replay", type=int, help="resume: messages to replay")
    parser.add_argument("--storm-members", type=int, help="storm: members joining at once")
    parser.add_argument("--storm-rate", type=float,
                        help="storm: msg/s posted during the storm (0: none)")  # fmt: skip
    parser.add_argument("--reconnect-sockets", type=int,
                        help="reconnect: sockets that drop and come back")  # fmt: skip
    parser.add_argument("--reconnect-posts", type=int,
                        help="reconnect: posts made meanwhile, all rooms together")  # fmt: skip
    parser.add_argument("--restart-window", type=float,
                        help="restart: comebacks' spread, s (default: the server's)")  # fmt: skip
    parser.add_argument("--search-messages", type=int, help="search: messages stored")
    parser.add_argument("--clients", type=int, help="upload: clients uploading at once")
    parser.add_argument("--upload-seconds", type=float, help="upload: how long they upload")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    for scenario in args.scenarios:
        if scenario not in SCENARIOS:
            parser.error(f"unknown scenario {scenario!r}: use {', '.join(SCENARIOS)}")
    try:
        args.configs = [config_named(name) for name in args.configs]
    except ValueError as error:
        parser.error(str(error))
    if args.rounds is None:
        args.rounds = 1 if args.quick else ROUNDS
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def sizes(args: argparse.Namespace) -> dict[str, dict]:
    """Each scenario's keyword arguments: --quick or full sizes, overridden by explicit options."""
    chosen = {name: dict(values) for name, values in (QUICK if args.quick else FULL).items()}
    overrides = {
        "fanout": {"members": args.members, "rates": args.rates, "seconds": args.seconds,
                   "files": args.files},
        "rooms": {"rooms": args.rooms, "members": args.room_members, "rates": args.member_rates,
                  "seconds": args.seconds},
        "idle": {"sockets": args.sockets},
        "resume": {"messages": args.replay},
        "storm": {"members": args.storm_members, "rate": args.storm_rate},
        "reconnect": {"sockets": args.reconnect_sockets, "posts": args.reconnect_posts},
        "restart": {"sockets": args.sockets, "window": args.restart_window},
        "search": {"messages": args.search_messages},
        "upload": {"clients": args.clients, "seconds": args.upload_seconds},
    }  # fmt: skip
    for name, given in overrides.items():
        chosen[name].update({key: value for key, value in given.items() if value is not None})
    return chosen


async def run_all(args: argparse.Namespace, plan: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """Run every scenario under every configuration, ``--rounds`` times; the medians.

    Per scenario the configurations alternate round by round (A B A B ...),
    so that the machine's noise falls on all of them alike. With more than
    one round each result keeps every round under ``"rounds"``.
    """
    results: dict[str, dict[str, dict]] = {}
    for scenario in args.scenarios:
        runs: dict[str, list[dict]] = {config.name: [] for config in args.configs}
        for round_ in range(1, args.rounds + 1):
            for config in args.configs:
                bench = Bench(config, args.database, args.redis, args.profile, round_)
                name = f"{config.name} {scenario} (round {round_}/{args.rounds})"
                print(f"-- {name} ...", file=sys.stderr, flush=True)
                started = time.monotonic()
                try:
                    result = await SCENARIOS[scenario](bench, **plan[scenario])
                except Exception as error:  # one failed run must not lose the others
                    traceback.print_exc()
                    result = {"error": f"{type(error).__name__}: {error}"}
                took = time.monotonic() - started
                print(f"-- {name} took {took:.0f} s", file=sys.stderr, flush=True)
                runs[config.name].append(result)
        for config_name, rounds in runs.items():
            merged = median_result(rounds)
            if len(rounds) > 1:
                merged["rounds"] = rounds
            results.setdefault(scenario, {})[config_name] = merged
    return results


def git_commit() -> str | None:
    """The commit the work tree is on (None outside git)."""
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> None:
    """Pin this process to core 1, run the benchmark, print the table, write the JSON."""
    import uvloop

    args = parse_arguments(argv)
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    plan = sizes(args)
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    results = uvloop.run(run_all(args, plan))
    found = ratios(results)
    if args.rounds > 1:
        print(f"Medians of {args.rounds} rounds; lost, dup, reord and failures: the worst round.\n")
    print(table(results))
    print(NOISE_NOTE)
    print()
    print(ratio_lines(found) or "(one configuration: no ratios)")
    attached = {
        config: files_ratios(result) for config, result in results.get("fanout", {}).items()
    }
    for config, by_step in attached.items():
        for step, ratio in by_step.items():
            print(f"fanout  {config} cpu µs/delivery, {step} / without: {figure(ratio)}")
    document = {
        "started": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "configs": {
            c.name: {"command": c.command or [sys.executable, "-m", "config.server"], "env": c.env}
            for c in args.configs
        },
        "sizes": {name: plan[name] for name in args.scenarios},
        "rounds": args.rounds,
        "redis": args.redis or "a redis-server per scenario, pinned to core 0",
        "results": results,
        "ratios": found,
        "files_ratios": attached,
    }
    with open(args.json, "w") as out:
        json.dump(document, out, indent=2, ensure_ascii=False)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
