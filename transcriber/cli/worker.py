"""``transcriber worker`` (decode parts for an app on another machine) and ``transcriber workers`` (list them).

Option names and JSON fields are a contract like the rest of the command line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from ..display import redacted, shown
from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE

REDIS_URL_ENV = "TRANSCRIBER_REDIS_URL"


def add_parsers(commands) -> None:
    worker = commands.add_parser(
        "worker",
        help="decode parts for the app through Redis (run on a processing machine; no window, no database)",
        description="Serve the transcribe queues of a transcriber app through RQ on Redis: the model stays loaded "
        "between parts, segments go back to the app as they are decoded, and a stop from the app (pause, cancel) "
        "ends the part at its next segment. SIGTERM or Ctrl+C stops after the part in hand.",
    )
    worker.add_argument("--redis", metavar="URL", default=os.environ.get(REDIS_URL_ENV),
                        help=f"the app's Redis, redis://user:password@host:port/0 or rediss:// (default: ${REDIS_URL_ENV})")
    worker.add_argument("--queues", metavar="Q", default="large,small",
                        help="the size pools to take parts from, in order: large, small or both (default: large,small)")
    worker.add_argument("--model", metavar="M", help="load this model at start and keep it (default: load as parts need)")
    worker.add_argument("--media-map", metavar="SRC=DST", action="append", default=[],
                        help="the app's folder SRC is DST on this machine (a shared folder; may be repeated)")
    worker.add_argument("--threads", metavar="N", type=_threads, help="decoder threads (default: every core of this machine)")
    worker.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="decode on the GPU when there is one (auto), or always on cpu or cuda")
    worker.add_argument("--name", metavar="N", help="the name the app shows (default: host-pid)")
    worker.add_argument("--cache", metavar="DIR", help="where downloaded media and models are kept")
    worker.add_argument("--burst", action="store_true", help="exit once the queues are empty")

    workers = commands.add_parser("workers", help="list the remote workers serving this data folder's Redis")
    workers.add_argument("--redis", metavar="URL", help="ask this Redis (default: the redis_url setting)")
    workers.add_argument("--json", action="store_true", help="print JSON")


def _threads(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("must be from 1 to 256")
    return value


def cmd_worker(_app, args) -> int:
    from ..paths import resolve_paths
    from ..scaleout import protocol
    from ..scaleout.worker import parse_media_map, run_worker

    if not args.redis:
        print(f"error: give --redis URL (or set {REDIS_URL_ENV})", file=sys.stderr)
        return EXIT_USAGE
    try:
        queues = protocol.queue_names(args.queues)
        media_map = parse_media_map(args.media_map)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    cache = Path(args.cache) if args.cache else resolve_paths(None).cache_dir / "worker"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("rq").setLevel(logging.WARNING)
    print(f"worker serving {', '.join(queues)} of {redacted(args.redis)}", file=sys.stderr, flush=True)
    try:
        run_worker(args.redis, queues, name=args.name, model=args.model, media_map=media_map, cache_dir=cache,
                   burst=args.burst, threads=args.threads, device=args.device)
    except ImportError as error:
        print(f"error: {error.name or error} is not installed: pip install 'transcriber[worker]'", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as error:  # redis-py's connection and auth errors
        if type(error).__module__.startswith("redis"):
            print(f"error: Redis at {redacted(args.redis)}: {error}", file=sys.stderr)
            return EXIT_FAILED
        raise
    return EXIT_OK


def cmd_workers(app, args) -> int:
    from ..scaleout.coordinator import connect, live_workers

    url = args.redis or app.store.settings.read().redis_url
    if not url:
        print("error: no Redis: transcriber config set redis_url redis://... (and queue_backend redis)", file=sys.stderr)
        return EXIT_USAGE
    try:
        workers = live_workers(connect(url))
    except ImportError:
        print("error: redis is not installed: pip install 'transcriber[worker]'", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:
        print(f"error: Redis at {redacted(url)} cannot be reached: {error}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps([
            {"name": w.name, "host": w.host, "queues": list(w.queues), "capacity": w.capacity, "model": w.model or None,
             "busy": w.busy or None, "last_seen": round(w.seen, 3)} for w in workers
        ], indent=2))
        return EXIT_OK
    if not workers:
        print("no remote worker is running")
        return EXIT_OK
    print(f"{'name':<24} {'host':<16} {'queues':<34} {'model':<8} doing")
    now = time.time()
    for w in workers:
        doing = w.busy or "idle"
        print(f"{shown(w.name):<24} {shown(w.host):<16} {','.join(w.queues):<34} {w.model or '-':<8} {shown(doing)}"
              f"  (seen {max(0.0, now - w.seen):.0f} s ago)")
    return EXIT_OK


COMMANDS = {"worker": cmd_worker, "workers": cmd_workers}
