"""Text that is safe to print: file names on one line whatever bytes they hold, addresses without their passwords."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit


def shown(text: str | os.PathLike) -> str:
    """``text`` with control characters (a newline in a file name) and undecodable bytes escaped as ``\\xNN``.

    A name can never spoof a line of ``add`` or ``list`` output, and a name that is not
    UTF-8 (kept by Python as surrogate escapes) prints instead of raising.
    """
    out = []
    for char in os.fspath(text):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def redacted(url: str) -> str:
    """``url`` without the password (or token) of its ``user:pass@`` part: what logs and lists may show."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
