"""Transcripts to text files: one pure renderer per format, and safe writing to disk."""

from .files import export_transcript, output_name, unique_path, write_atomic
from .formats import FORMATS, parse_formats, render

__all__ = ["FORMATS", "parse_formats", "render", "export_transcript", "output_name", "unique_path", "write_atomic"]
