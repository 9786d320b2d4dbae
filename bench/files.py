"""Attachments in the benchmark: the ``upload`` scenario, and the uploads ``fanout --files`` posts.

``upload``: N clients (threads of this process, each a user with an API
token, each uploading through multichat_client's RestClient.upload, one
upload at a time: a closed loop) upload 1 MB PNG images to one server
process for S seconds. The images are made here with Pillow from a fixed
seed: 1280 x 720 pixels of bounded noise, which PNG cannot squeeze below
about 1 MB, so the server really decodes, checks and thumbnails a photo-sized
image. Reported: uploads/s, p50/p90/p99/max latency, server CPU per upload
(and PostgreSQL's), every refusal by code.
"""

from __future__ import annotations

import asyncio
import io
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from bench.common import Bench, served
from multichat_client import MultichatError, RestClient

SEED = 20  # the images' noise: the same bytes on every run
WIDTH, HEIGHT = 1280, 720
NOISE_LEVELS = 4  # 2 bits of noise per channel: a 1280x720 PNG of about 1.03 MB
# Far above what a benchmark run uploads (the default is 500 MiB a day per user).
BENCH_UPLOAD_ENV = {"CHAT_UPLOAD_QUOTA_BYTES_PER_DAY": str(2**40)}


def takes_uploads(bench: Bench) -> bool:
    """Whether the configuration's server takes uploads (the production application does;
    the tutorial and raw servers do not)."""
    return bench.config.services and bench.config.name != "tutorial"


def png_image(seed: int, *, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A PNG of ``width`` x ``height`` pixels of bounded noise, the same for the same seed."""
    from PIL import (
        Image,
    )  # the server's dependency; imported here so the rest of bench runs without

    noise = random.Random(seed).randbytes(width * height * 3)
    table = bytes(96 + i % NOISE_LEVELS for i in range(256))
    image = Image.frombytes("RGB", (width, height), noise.translate(table))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def make_tokens(bench_target, usernames: Sequence[str]) -> list[str]:
    """An API token for each of the benchmark's users (made in one manage.py run)."""
    calls = [["token", {"username": name, "name": "bench"}] for name in usernames]
    tokens: list[str] = bench_target.live.testkit("batch", calls=calls)
    return tokens


def upload_many(rest: RestClient, image: bytes, count: int, *, workers: int = 4) -> list[str]:
    """Upload ``image`` ``count`` times (``workers`` at a time); the ids, in upload order."""

    def one(i: int) -> str:
        return rest.upload(io.BytesIO(image), name=f"attachment-{i}.png").id

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(count)))


def latency_ms(latencies: list[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max of latencies in seconds, in milliseconds."""
    ordered = sorted(latencies)

    def pick(p: float) -> float | None:
        return round(ordered[int(p * (len(ordered) - 1))] * 1000, 1) if ordered else None

    return {"p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99), "max_ms": pick(1.0)}


def upload_loop(
    rest: RestClient, images: Sequence[bytes], until: float, record: list, lock: threading.Lock
) -> None:
    """Upload the images in turn until ``until`` (monotonic); record (latency, FileInfo or code)."""
    i = 0
    while time.monotonic() < until:
        image = images[i % len(images)]
        started = time.monotonic()
        try:
            outcome: object = rest.upload(io.BytesIO(image), name=f"photo-{i}.png")
        except MultichatError as exc:
            outcome = exc.code
        with lock:
            record.append((time.monotonic() - started, outcome))
        i += 1


async def upload(bench: Bench, *, clients: int = 4, seconds: float = 10.0, images: int = 4) -> dict:
    """``clients`` users upload 1 MB PNGs back to back for ``seconds``: rate, latency, CPU."""
    if not takes_uploads(bench):
        raise RuntimeError("upload needs the production application (only it takes uploads)")
    pictures = await asyncio.to_thread(lambda: [png_image(SEED + i) for i in range(images)])
    async with served(
        bench, scenario="upload", users=clients, rooms=1, env=BENCH_UPLOAD_ENV
    ) as target:
        usernames = [f"bench{i}" for i in range(clients)]
        tokens = await asyncio.to_thread(make_tokens, target, usernames)
        rests = [RestClient(target.live.url, token, timeout=60) for token in tokens]
        # One upload each first: the server's first images pay for imports and warm-up.
        first = await asyncio.to_thread(rests[0].upload, io.BytesIO(pictures[0]), name="warm.png")
        record: list[tuple[float, object]] = []
        lock = threading.Lock()
        usage0 = target.usage()
        began = time.monotonic()
        until = began + seconds
        with ThreadPoolExecutor(clients) as pool:
            loop = asyncio.get_running_loop()
            await asyncio.gather(
                *(
                    loop.run_in_executor(pool, upload_loop, rest, pictures, until, record, lock)
                    for rest in rests
                )
            )
        elapsed = time.monotonic() - began
        spent = target.usage().spent_since(usage0)
    done = [(latency, info) for latency, info in record if not isinstance(info, str)]
    refused = Counter(info for _, info in record if isinstance(info, str))
    count = len(done)

    def per_upload(cpu: float | None) -> float | None:
        return round(cpu / count * 1000, 2) if cpu is not None and count else None

    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "image_bytes": round(sum(len(p) for p in pictures) / len(pictures)),
        "image_pixels": f"{WIDTH}x{HEIGHT}",
        "thumbnail": first.thumb is not None and first.width == WIDTH,
        "uploads": count,
        "uploads_per_s": round(count / elapsed, 2),
        "mb_per_s": round(count * len(pictures[0]) / elapsed / 1e6, 2),
        **latency_ms([latency for latency, _ in done]),
        "errors": sum(refused.values()),
        "error_codes": dict(refused),
        "server_cpu_s": round(spent.server, 2),
        "cpu_ms_per_upload": per_upload(spent.server),
        "pg_ms_per_upload": per_upload(spent.postgres),
        "core0_others_pct": spent.others_pct,
    }
