"""``transcriber COMMAND ...``: the parser, and running one command against the data folder."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .. import __version__
from ..app import open_app
from ..engine.listener import EngineListener
from ..errors import TranscriberError
from . import automation, jobs, models, record, search, speakers, worker
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

COMMANDS = {
    **jobs.COMMANDS, **automation.COMMANDS, **record.COMMANDS, **models.COMMANDS, **search.COMMANDS,
    **speakers.COMMANDS, **worker.COMMANDS,
}

# Commands that run without opening the user's data folder (they get None for ``app``).
STANDALONE_COMMANDS = {"self-test", "worker"}


class TerminalListener(EngineListener):
    """What the engine says that a person at the terminal should read (progress is polled by the commands)."""

    def engine_notice(self, message: str) -> None:
        print(f"note: {message}", file=sys.stderr, flush=True)


class UpgradeProgress:
    """Says on stderr how a long database upgrade advances (building the search index of a large library)."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self._shown: dict[str, int] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        step = done * 10 // max(1, total)  # every tenth, so a log stays short
        if step > self._shown.get(what, -1):
            self._shown[what] = step
            self.stream.write(f"{what}: {done} of {total} segments ({done * 100 // max(1, total)}%)\n")
            self.stream.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transcriber",
        description="Transcribe audio and video files on this machine. Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"transcriber {__version__}")
    parser.add_argument("--data-dir", metavar="DIR", help="data folder (default: $TRANSCRIBER_DATA_DIR or the user data folder)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr too")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    jobs.add_parsers(commands)
    automation.add_parsers(commands)
    record.add_parsers(commands)
    models.add_parsers(commands)
    search.add_parsers(commands)
    worker.add_parsers(commands)
    speakers.add_parsers(commands)
    return parser


def run_command(argv: Sequence[str]) -> int:
    """Parse ``argv`` and run the command it names; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints escaped, never raises
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    if args.command in STANDALONE_COMMANDS:
        return COMMANDS[args.command](None, args)
    try:
        app = open_app(args.data_dir, listener=TerminalListener(), verbose=args.verbose, on_progress=UpgradeProgress())
    except TranscriberError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return COMMANDS[args.command](app, args)
    except TranscriberError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `transcriber list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    finally:
        app.close()
