"""``transcriber search``: find words in every transcript of the library, with where they were said.

Options and JSON fields are a contract: add to them, never rename them.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from ..audio.decode import format_clock
from ..display import shown
from ..store.search import DEFAULT_LIMIT, SearchHit
from .common import EXIT_FAILED, EXIT_OK, bounded_int, user_of


def since_date(text: str) -> float:
    """An argparse type: ``2024-03-01`` (local midnight) or an ISO date and time -> POSIX seconds."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return when.timestamp()  # a naive date or time is local time


def hit_record(hit: SearchHit) -> dict:
    """The JSON form of a hit in ``search --json`` (a contract: add fields, never rename them)."""
    return {
        "job_id": hit.job_id,
        "path": hit.path,
        "start": round(hit.start, 3),
        "end": round(hit.end, 3),
        "text": hit.text.strip(),
        "snippet": hit.snippet.strip(),
        "rank": round(hit.rank, 6),
        "speaker": hit.speaker,
    }


def add_parsers(commands) -> None:
    search = commands.add_parser(
        "search",
        help="find words in every transcript: words, \"a phrase\", prefix*, AND/OR/NOT (case and accents ignored)",
    )
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--user", metavar="U", help="whose jobs to search (default: your login name)")
    search.add_argument("--model", metavar="M", help="only jobs decoded by this model")
    search.add_argument("--since", type=since_date, metavar="DATE", help="only jobs added on or after DATE (YYYY-MM-DD)")
    search.add_argument("--limit", type=bounded_int(1, 100_000), default=DEFAULT_LIMIT, metavar="N",
                        help=f"at most N hits (default: {DEFAULT_LIMIT})")
    search.add_argument("--speaker", metavar="NAME", help='only what this speaker said ("Speaker 2", "Dr. Amara")')
    search.add_argument("--json", action="store_true")


def cmd_search(app, args) -> int:
    results = app.store.search.search(
        args.query, user=user_of(args), model=args.model, since=args.since, limit=args.limit, speaker=args.speaker
    )
    if results.note:
        print(f"note: {results.note}", file=sys.stderr)
    if args.json:
        print(json.dumps([hit_record(hit) for hit in results.hits], indent=2, ensure_ascii=False))
    else:
        for hit in results.hits:
            said = f"{shown(hit.speaker)}: " if hit.speaker else ""
            print(f"{hit.job_id}\t{shown(hit.file_name)}\t{format_clock(hit.start)}\t{said}{shown(hit.snippet.strip())}")
    if not results.hits:
        print(f"no match for {args.query!r}", file=sys.stderr)
        return EXIT_FAILED
    if results.more:
        print(f"more hits than {args.limit}: narrow the query or raise --limit", file=sys.stderr)
    return EXIT_OK


COMMANDS = {"search": cmd_search}
