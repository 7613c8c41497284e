"""Transcripts to text files: one pure renderer per format, and one safe way to write them to disk."""

from .files import (
    ExportRefused,
    claim_target,
    export_file,
    export_transcript,
    output_name,
    unique_path,
    write_atomic,
    written_file,
)
from .formats import FORMATS, parse_formats, render

__all__ = [
    "FORMATS", "ExportRefused", "claim_target", "export_file", "export_transcript", "output_name",
    "parse_formats", "render", "unique_path", "write_atomic", "written_file",
]
