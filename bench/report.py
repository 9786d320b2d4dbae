"""The benchmark's table and ratios, from the results bench.run collects.

``results`` is {scenario: {configuration: result}}, a result being what the
scenario function returned (or {"error": text}). The table has one row per
(configuration, scenario, step); the ratios compare the first configuration
with each of the others.
"""

from __future__ import annotations

from bench.loadgen import DRAIN_LIMIT_S

SUSTAINED_P99_MS = 100.0

# (heading, key) per scenario; stepped scenarios have a row per step.
COLUMNS = {
    "fanout": [
        ("step", "step"), ("offered/s", "offered_per_s"), ("delivered/s", "delivered_per_s"),
        ("B/deliv", "bytes_per_delivery"), ("p50 ms", "p50_ms"), ("p90 ms", "p90_ms"),
        ("p99 ms", "p99_ms"), ("max ms", "max_ms"),
        ("lost", "lost"), ("dup", "duplicated"), ("reord", "reordered"),
        ("cpu µs/deliv", "cpu_us_per_delivery"), ("redis µs/deliv", "redis_us_per_delivery"),
        ("pg µs/post", "pg_us_per_post"), ("peak MiB", "peak_rss_mib"),
        ("gen cpu%", "client_cpu_pct"), ("noise%", "core0_others_pct"),
        ("activity", "activity_frames"),
    ],
    "rooms": [
        ("step", "step"), ("offered posts/s", "offered_posts_per_s"), ("posts/s", "posts_per_s"),
        ("deliveries/s", "delivered_per_s"), ("p50 ms", "p50_ms"), ("p90 ms", "p90_ms"),
        ("p99 ms", "p99_ms"), ("max ms", "max_ms"), ("lost", "lost"), ("dup", "duplicated"),
        ("reord", "reordered"), ("cpu µs/post", "cpu_us_per_post"),
        ("redis µs/post", "redis_us_per_post"), ("pg µs/post", "pg_us_per_post"),
        ("peak MiB", "peak_rss_mib"), ("gen cpu%", "client_cpu_pct"),
        ("noise%", "core0_others_pct"),
    ],
    "idle": [
        ("sockets", "sockets"), ("joined", "joined"), ("retries", "retries"), ("failed", "failed"),
        ("seconds", "seconds"), ("joins/s", "joins_per_s"), ("KiB/socket", "kib_per_socket"),
        ("RSS MiB", "rss_after_mib"), ("cpu ms/join", "cpu_ms_per_join"),
        ("redis ms/join", "redis_ms_per_join"), ("pg ms/join", "pg_ms_per_join"),
        ("noise%", "core0_others_pct"),
    ],
    "resume": [
        ("messages", "messages"), ("median ms", "median_ms"), ("best ms", "best_ms"),
        ("worst ms", "worst_ms"), ("lost", "lost"), ("dup", "duplicated"), ("reord", "reordered"),
    ],
    "storm": [
        ("members", "members"), ("joined", "joined"), ("retries", "retries"),
        ("joined s", "joined_s"), ("converged s", "converged_s"),
        ("presence frames/sock", "presence_frames_per_socket.median"),
        ("max", "presence_frames_per_socket.max"),
        ("presence KiB/sock", "presence_kib_per_socket.median"),
        ("max", "presence_kib_per_socket.max"), ("presence MiB", "presence_mib"),
        ("cpu s", "server_cpu_s"), ("cpu ms/join", "cpu_ms_per_join"), ("posted", "posted"),
        ("p99 ms", "p99_ms"), ("lost", "lost"), ("dup", "duplicated"), ("reord", "reordered"),
        ("dropped", "dropped"),
    ],
    "reconnect": [
        ("sockets", "sockets"), ("posts", "posts"), ("posts/sock", "posts_per_socket"),
        ("back", "reconnected"), ("failed", "failed"), ("retries", "retries"),
        ("joined s", "joined_s"), ("all back s", "all_back_s"),
        ("reconnects/s", "reconnects_per_s"), ("cpu ms/rejoin", "cpu_ms_per_join"),
        ("redis ms/rejoin", "redis_ms_per_join"), ("pg ms/rejoin", "pg_ms_per_join"),
        ("lost", "lost"), ("dup", "duplicated"), ("reord", "reordered"), ("dropped", "dropped"),
        ("noise%", "core0_others_pct"),
    ],
    "restart": [
        ("sockets", "sockets"), ("1012", "closed_1012"), ("other", "closed_other"),
        ("window s", "window_s"),
        ("old exit s", "old_exit_s"), ("new up s", "new_answered_s"), ("back", "back"),
        ("failed", "failed"), ("retries", "retries"), ("joined s", "joined_s"),
        ("all back s", "all_back_s"), ("new cpu s", "new_cpu_s"),
        ("cpu after up s", "new_cpu_after_answer_s"), ("posted", "posted"), ("lost", "lost"),
        ("dup", "duplicated"), ("reord", "reordered"),
    ],
    "upload": [
        ("clients", "clients"), ("seconds", "seconds"), ("image B", "image_bytes"),
        ("thumb", "thumbnail"), ("uploads", "uploads"), ("uploads/s", "uploads_per_s"),
        ("MB/s", "mb_per_s"), ("p50 ms", "p50_ms"), ("p90 ms", "p90_ms"), ("p99 ms", "p99_ms"),
        ("max ms", "max_ms"), ("errors", "errors"), ("cpu ms/upload", "cpu_ms_per_upload"),
        ("pg ms/upload", "pg_ms_per_upload"), ("noise%", "core0_others_pct"),
    ],
    "search": [
        ("query", "step"), ("n", "n"), ("p50 ms", "p50_ms"), ("p95 ms", "p95_ms"),
        ("p99 ms", "p99_ms"), ("max ms", "max_ms"), ("hits", "mean_hits"),
    ],
}  # fmt: skip


def cell(value) -> str:
    """One table cell: numbers with thousands separators, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def lookup(entry: dict, key: str):
    """``entry[key]``, where ``a.b`` is ``entry[a][b]`` (None when absent)."""
    value = entry
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def rows(scenario: str, config: str, result: dict) -> list[list[str]]:
    """The table rows of one scenario's result under one configuration."""
    if "error" in result:
        return [[config, f"error: {result['error']}"]]
    found = []
    for entry in result.get("steps", [result]):
        row = [config, *(cell(lookup(entry, key)) for _, key in COLUMNS[scenario])]
        if entry.get("wait_ended") == "limit":  # mark the lost count: some may only be late
            lost = [key for _, key in COLUMNS[scenario]].index("lost") + 1
            row[lost] += "*"
        found.append(row)
    return found


def table(results: dict[str, dict[str, dict]]) -> str:
    """The whole table: a block per scenario, a row per (configuration, step)."""
    blocks = []
    for scenario, by_config in results.items():
        header = ["config", *(heading for heading, _ in COLUMNS[scenario])]
        body = [
            row for config, result in by_config.items() for row in rows(scenario, config, result)
        ]
        full = [header, *(row for row in body if len(row) > 2)]
        widths = [max(len(row[i]) for row in full) for i in range(len(header))]
        widths[0] = max(len(row[0]) for row in [header, *body])
        lines = [
            f"== {scenario}",
            "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)),
        ]
        for row in body:
            if len(row) == 2:  # an error
                lines.append(f"{row[0].rjust(widths[0])}  {row[1]}")
            else:
                lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        blocks.append("\n".join(lines))
    text = "\n\n".join(blocks)
    if any(step.get("wait_ended") == "limit" for step in all_steps(results)):
        text += f"\n* frames still arriving after {DRAIN_LIMIT_S:g} s of waiting: late or lost"
    return text


def all_steps(results: dict[str, dict[str, dict]]) -> list[dict]:
    """Every step of every stepped result."""
    return [step for by_config in results.values() for result in by_config.values()
            for step in result.get("steps", [])]  # fmt: skip


def best_sustained(result: dict) -> float | None:
    """Delivered/s of the highest step with p99 ≤ 100 ms and nothing lost (None if no step).

    A room's message reaches its last member after the server has written
    it to all the others, so this can be None at any rate for a server that
    is slow per recipient; ``peak`` compares capacity regardless.
    """
    good = [step for step in result.get("steps", [])
            if step["p99_ms"] is not None and step["p99_ms"] <= SUSTAINED_P99_MS
            and step["lost"] == 0]  # fmt: skip
    return good[-1]["delivered_per_s"] if good else None


def peak(result: dict) -> float | None:
    """Delivered/s of the busiest step that lost nothing, whatever its latency (capacity)."""
    good = [step["delivered_per_s"] for step in result.get("steps", []) if step["lost"] == 0]
    return max(good) if good else None


def headline(scenario: str, result: dict) -> dict[str, float | None]:
    """The figures a scenario is compared on."""
    if "error" in result:
        return {}
    if scenario in ("fanout", "rooms"):
        steps = result["steps"]
        return {
            "best sustained delivered/s": best_sustained(result),
            "peak delivered/s, nothing lost": peak(result),
            "server cpu µs/delivery (first step)": steps[0]["cpu_us_per_delivery"]
            if steps
            else None,
        }
    if scenario == "idle":
        return {
            "connects+joins/s": result["joins_per_s"],
            "server cpu ms/join": result["cpu_ms_per_join"],
            "KiB/socket": result["kib_per_socket"],
        }
    if scenario == "reconnect":
        return {
            "all back s": result["all_back_s"],
            "reconnects/s": result["reconnects_per_s"],
            "server cpu ms/reconnect": result["cpu_ms_per_join"],
        }
    if scenario == "restart":
        return {"all back s": result["all_back_s"], "new process cpu s": result["new_cpu_s"]}
    if scenario == "upload":
        return {
            "uploads/s": result["uploads_per_s"],
            "p99 ms": result["p99_ms"],
            "server cpu ms/upload": result["cpu_ms_per_upload"],
        }
    if scenario == "storm":
        return {
            "all joined s": result["joined_s"],
            "converged s": result["converged_s"],
            "server cpu ms/join": result["cpu_ms_per_join"],
        }
    return {"median resume ms": result["median_ms"]}


def files_ratios(result: dict) -> dict[str, float | None]:
    """fanout --files: per rate, CPU per delivery with attachments / without (the same rate)."""
    plain = {s["rate"]: s for s in result.get("steps", []) if not s.get("files")}
    found: dict[str, float | None] = {}
    for attached in result.get("steps", []):
        without = plain.get(attached["rate"]) if attached.get("files") else None
        if without is None:
            continue
        a, b = attached["cpu_us_per_delivery"], without["cpu_us_per_delivery"]
        found[attached["step"]] = round(a / b, 2) if a is not None and b else None
    return found


def ratios(results: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """Per scenario and figure: each configuration's value and first/other ratios."""
    found: dict[str, dict[str, dict]] = {}
    for scenario, by_config in results.items():
        configs = list(by_config)
        if len(configs) < 2:
            continue
        figures = {config: headline(scenario, result) for config, result in by_config.items()}
        first = configs[0]
        for name in figures[first] or next(iter(f for f in figures.values() if f), {}):
            entry = {config: figures[config].get(name) for config in configs}
            for other in configs[1:]:
                a, b = entry[first], entry[other]
                entry[f"{first}/{other}"] = round(a / b, 2) if a is not None and b else "none"
            found.setdefault(scenario, {})[name] = entry
    return found


def figure(value) -> str:
    """A value or ratio in the ratio lines: "none" for no value, small numbers to 2 decimals."""
    if value is None:
        return "none"
    if isinstance(value, float) and abs(value) < 10:
        return f"{value:.2f}"
    return cell(value)


def ratio_lines(found: dict[str, dict[str, dict]]) -> str:
    """The ratios as text, one line per scenario and figure."""
    lines = []
    for scenario, figures in found.items():
        for name, entry in figures.items():
            values = ", ".join(f"{key} {figure(value)}" for key, value in entry.items())
            lines.append(f"{scenario:7} {name}: {values}")
    return "\n".join(lines)


NOISE_NOTE = (
    "noise%: how much of core 0 (the server's) other processes of the machine took during the "
    "step; CPU per operation holds under noise, rates and latencies do not."
)
