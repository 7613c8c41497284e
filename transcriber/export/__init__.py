"""Transcripts to text files: one pure renderer per format, and safe writing to disk."""

from .formats import FORMATS, render
from .files import export_transcript, output_name, unique_path, write_atomic

__all__ = ["FORMATS", "render", "export_transcript", "output_name", "unique_path", "write_atomic"]
