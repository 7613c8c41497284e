"""Export formats, checked with independent parsers, and safe writing."""

from __future__ import annotations

import io
import json
import os

import pytest
import srt
import webvtt

from transcriber.errors import TranscriberError
from transcriber.export import FORMATS, export_transcript, render, unique_path, write_atomic
from transcriber.jobs import Job, JobOptions, JobStatus, Segment, Transcript, Word

SEGMENTS = (
    Segment(0, 0.0, 2.5, " Hello there."),
    Segment(1, 2.5, 3661.25, " A long one, with --> an arrow\n\nand a blank line.", (Word(2.5, 3.0, " A", 0.9),)),
    Segment(2, 3661.25, 3662.0, "   "),  # nothing said: left out of subtitle formats
)


@pytest.fixture
def transcript():
    job = Job(id=7, user="ann", source_path="/rec/interview 3.m4a", size_bytes=10, mtime=0, content_hash="ab",
              duration_seconds=3662.0, options=JobOptions(), status=JobStatus.COMPLETED, created_at=0, finished_at=10)
    return Transcript(job=job, segments=SEGMENTS)


def test_srt_parses_with_an_independent_parser(transcript):
    subtitles = list(srt.parse(render("srt", transcript)))
    assert [s.index for s in subtitles] == [1, 2]
    assert subtitles[0].start.total_seconds() == 0.0 and subtitles[0].end.total_seconds() == 2.5
    assert subtitles[1].end.total_seconds() == pytest.approx(3661.25)
    assert "an arrow" in subtitles[1].content and "and a blank line." in subtitles[1].content


def test_vtt_parses_with_an_independent_parser(transcript):
    captions = webvtt.from_buffer(io.StringIO(render("vtt", transcript)))
    assert len(captions) == 2
    assert captions[0].start == "00:00:00.000" and captions[0].end == "00:00:02.500"
    assert captions[1].end == "01:01:01.250"
    assert "-->" not in captions[1].text and "and a blank line." in captions[1].text


def test_json_has_metadata_and_segments(transcript):
    document = json.loads(render("json", transcript))
    assert document["id"] == 7 and document["file_name"] == "interview 3.m4a" and document["model"] == "tiny.en"
    assert document["segments"][0] == {"start": 0.0, "end": 2.5, "text": "Hello there."}
    assert document["segments"][1]["words"] == [{"start": 2.5, "end": 3.0, "word": " A", "probability": 0.9}]


def test_txt_and_tsv(transcript):
    assert render("txt", transcript).splitlines()[0] == "Hello there."
    rows = render("tsv", transcript).splitlines()
    assert rows[0] == "start\tend\ttext"
    assert rows[1] == "0\t2500\tHello there."
    assert rows[2].split("\t")[:2] == ["2500", "3661250"] and "\n" not in rows[2]


def test_unknown_format(transcript):
    with pytest.raises(ValueError, match="Unknown format 'doc'"):
        render("doc", transcript)


def test_export_names_files_after_the_source_and_respects_overwrite(transcript, tmp_path):
    written = export_transcript(transcript, FORMATS, tmp_path, overwrite=False)
    assert sorted(p.name for p in written) == sorted(f"interview 3.{fmt}" for fmt in FORMATS)
    again = export_transcript(transcript, ["txt"], tmp_path, overwrite=False)
    assert again[0].name == "interview 3 (2).txt"
    replaced = export_transcript(transcript, ["txt"], tmp_path, overwrite=True)
    assert replaced[0].name == "interview 3.txt"
    assert unique_path(tmp_path / "fresh.txt") == tmp_path / "fresh.txt"


def test_atomic_write_leaves_no_partial_file_on_a_full_disk(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    target = tmp_path / "out.txt"
    target.write_text("previous\n")
    # Writing through a symlink to /dev/full fails with ENOSPC, like a full disk.
    real_open = os.fdopen

    def full_disk(fd, *args, **kwargs):
        os.close(fd)
        return real_open(os.open("/dev/full", os.O_WRONLY), *args, **kwargs)

    os.fdopen = full_disk
    try:
        with pytest.raises(TranscriberError, match="the disk is full"):
            write_atomic(target, "new text " * 10000)
    finally:
        os.fdopen = real_open
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
