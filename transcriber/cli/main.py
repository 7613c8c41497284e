"""``transcriber COMMAND ...``: the parser, and running one command against the data folder."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .. import __version__
from ..app import open_app
from ..errors import TranscriberError
from . import automation, jobs, record, speakers
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

COMMANDS = {**jobs.COMMANDS, **automation.COMMANDS, **record.COMMANDS, **speakers.COMMANDS}

# Commands that run without opening the user's data folder (they get None for ``app``).
STANDALONE_COMMANDS = {"self-test"}


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
        app = open_app(args.data_dir, verbose=args.verbose)
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
