"""One result out of several rounds of a (configuration, scenario): medians, worst faults.

Every number is the median of the rounds that have it (each figure on its
own, so a row's p50 and p99 may come from different rounds); the fault
counts (lost, duplicated, reordered, errors, dropped, failed, ...) are the
worst round's, so a fault in any round shows. Stepped results are merged
step by step (by the step's label); a step that only some rounds reached
says so in its label ("120 msg/s (1/3 rounds)"). A round that failed is
left out and counted in ``failed_rounds``; if every round failed, the first
error is the result.
"""

from __future__ import annotations

import statistics
from typing import Any

# Counts where any occurrence matters: the worst round's, never a median.
WORST = frozenset(
    {"lost", "duplicated", "reordered", "errors", "dropped", "failed", "retries",
     "not_converged", "connect_retries"}
)  # fmt: skip
# How a drain ended, from best to worst (see bench.loadgen.drain).
WAIT_ORDER = ("all", "quiet", "limit")


def median_result(rounds: list[dict]) -> dict:
    """The rounds of one (configuration, scenario) merged into one result (see the module)."""
    good = [result for result in rounds if "error" not in result]
    if not good:
        return dict(rounds[0])
    merged: dict = merge(good)
    if len(good) < len(rounds):
        merged["failed_rounds"] = len(rounds) - len(good)
        merged["round_errors"] = [result["error"] for result in rounds if "error" in result]
    return merged


def merge(values: list[Any], key: str | None = None) -> Any:
    """The values one key has in each round, merged."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    first = present[0]
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for value in present for k in value))
        return {k: merge([value.get(k) for value in present], k) for k in keys}
    if key == "steps":
        return merge_steps(present)
    if key == "wait_ended":
        return max(present, key=lambda ended: WAIT_ORDER.index(ended) if ended in WAIT_ORDER else 0)
    if isinstance(first, bool):
        return all(present)
    if isinstance(first, int | float):
        numbers = [value for value in present if isinstance(value, int | float)]
        if key in WORST:
            return max(numbers)
        middle = statistics.median(numbers)
        if all(isinstance(value, int) for value in numbers) and middle == int(middle):
            return int(middle)
        return round(middle, 3)
    return first


def merge_steps(rounds: list[list[dict]]) -> list[dict]:
    """Each step's median over the rounds that reached it, in the order of the longest round."""
    labels = list(dict.fromkeys(step["step"] for steps in rounds for step in steps))
    merged = []
    for label in labels:
        found = [step for steps in rounds for step in steps if step["step"] == label]
        step = merge(found)
        if len(found) < len(rounds):
            step["step"] = f"{label} ({len(found)}/{len(rounds)} rounds)"
        merged.append(step)
    return merged
