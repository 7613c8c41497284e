"""Entry points: ``transcriber`` (and ``python -m transcriber``)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main

    return cli_main(argv)


def main_gui() -> int:
    return main([])


if __name__ == "__main__":
    sys.exit(main())
