"""Entry points (``transcriber``, ``transcriber-gui``, ``python -m transcriber``): the window or a command."""

from __future__ import annotations

import os
import sys
from typing import Sequence



def window_request(argv: Sequence[str]) -> tuple[str | None, bool, list[str]] | None:
    """``(data_dir, verbose, files)`` when ``argv`` asks for the window, None when it names a command.

    Plain ``transcriber`` opens the window; so does ``transcriber FILE...`` (the first
    argument is not a command), with those files added. Global options may come first;
    any other option (``--help``, ``--version``, ...) is left to the command parser.
    """
    from .cli.main import COMMANDS

    data_dir, verbose = None, False
    tokens = list(argv)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--data-dir":
            if index + 1 >= len(tokens):
                return None  # let argparse say what is missing
            data_dir = tokens[index + 1]
            index += 2
            continue
        if token.startswith("--data-dir="):
            data_dir = token.split("=", 1)[1]
        elif token in ("-v", "--verbose"):
            verbose = True
        elif token == "--":
            return data_dir, verbose, tokens[index + 1 :]
        elif token.startswith("-") or token in COMMANDS:
            return None
        else:
            return data_dir, verbose, tokens[index:]
        index += 1
    return data_dir, verbose, []


def has_display() -> bool:
    """Whether a window can be shown (on Linux, an X or Wayland display, or a platform chosen for Qt)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def main(argv: Sequence[str] | None = None) -> int:
    from .cli.common import EXIT_OK, EXIT_USAGE
    from .cli.main import build_parser, run_command

    argv = list(sys.argv[1:] if argv is None else argv)
    request = window_request(argv)
    if request is None:
        return run_command(argv)
    data_dir, verbose, files = request
    if not has_display():
        # A terminal without a display (ssh, a server): the commands still work.
        build_parser().print_help()
        print("\nNo display found, so the window cannot open; use one of the commands above.", file=sys.stderr)
        return EXIT_USAGE if files else EXIT_OK
    try:
        from .gui.app import run_window  # Qt loads only for the window
    except ImportError as error:
        if not (error.name or "").startswith("PySide6"):
            raise
        print("The window needs PySide6, which is not installed: python3 -m pip install 'transcriber[window]'. "
              "The commands work without it (transcriber --help).", file=sys.stderr)
        return EXIT_USAGE

    return run_window(files, data_dir, verbose=verbose)


def main_gui() -> int:
    return main([])


if __name__ == "__main__":
    sys.exit(main())
