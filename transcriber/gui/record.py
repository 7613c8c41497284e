"""The recording window: pick an input, watch its level, start, pause and stop; recordings become jobs.

The recorder itself (``audio/recorder.py``) writes on its own threads; this window only polls
it on a timer (level, elapsed time, state), so no recorder thread ever touches a widget. A
stopped recording goes through the engine's intake as the window's user, like a dropped file,
and stops being offered once it is a job. Recordings left by a crash (or stopped and never
queued) are listed here to transcribe or discard.

With *Show the words while recording* (on by default), the recording is a job from its start
and ``engine/live.LiveTranscriber`` decodes it on its own thread as it grows; its updates
reach the window as a queued signal (``LiveSignals``) and show under the level meter. On
Stop the job is queued and the engine finishes the tail.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from ..audio import recorder
from ..audio.decode import format_clock
from ..audio.recorder import InputDevice, InputMonitor, Recorder, Recording, RecordingError
from ..engine.core import IntakeResult
from ..engine.live import LiveTranscriber, LiveUpdate
from ..errors import IntakeRefused, JobStateError, StoreError
from .icons import app_icon, themed

log = logging.getLogger(__name__)

POLL_MS = 100  # the meter and the clock: smooth enough, and nothing to a busy machine


def recovered_notice(recordings: list[Recording]) -> str:
    """The message-strip line that offers recordings not yet transcribed."""
    names = ", ".join(f"{r.path.name} ({format_clock(r.seconds)})" for r in recordings[:3]) + ("…" if len(recordings) > 3 else "")
    count = len(recordings)
    return (f"{count} recording{'s were' if count != 1 else ' was'} not transcribed (interrupted or never queued): "
            f"{names}. Open File → Record… to transcribe or discard {'them' if count != 1 else 'it'}.")


class LiveSignals(QObject):
    """Carries the live decoder's updates (its thread) to the recording window (the GUI thread), queued."""

    updated = Signal(object)  # LiveUpdate


def live_line(segment) -> str:
    """One committed segment as the live transcript shows it."""
    return f"[{format_clock(segment.start)}] {segment.text.strip()}"


class RecordDialog(QDialog):
    """Record from a microphone into the data folder; each stopped recording becomes a job (``add_recording``).

    Args:
        window: the main window (its tasks, engine, notices and ``add_paths``).
    """

    recording_stopped = Signal(object)  # Recording
    recording_queued = Signal(object)  # list[IntakeResult]

    def __init__(self, window, parent=None):
        super().__init__(parent)
        self._window = window
        self._folder: Path = window.app.paths.recordings_dir
        self._devices: list[InputDevice] = []
        self._recorder: Recorder | None = None
        self._monitor: InputMonitor | None = None
        self._handed: set[str] = set()
        self.setWindowTitle("Record")
        self.setWindowIcon(app_icon())
        self.setModal(False)

        self.device_combo = QComboBox()
        self.device_combo.setMinimumWidth(280)
        self.refresh_button = QPushButton(themed("view-refresh"), "")
        self.refresh_button.setToolTip("Look for input devices again")
        self.refresh_button.clicked.connect(self.load_devices)
        self.level_meter = QProgressBar()
        self.level_meter.setRange(0, 100)
        self.level_meter.setTextVisible(False)
        self.level_meter.setToolTip("Input level of the chosen device, before and while recording")
        self.live_check = QCheckBox("Show the words while recording")
        self.live_check.setChecked(True)
        self.live_check.setToolTip("Transcribe as you speak; the transcript so far is kept even if the app crashes")
        self.live_view = QPlainTextEdit()
        self.live_view.setReadOnly(True)
        self.live_view.setPlaceholderText("The words appear here a few seconds after they are spoken.")
        self.live_view.setMinimumHeight(120)
        self.live_tentative = QLabel()
        self.live_tentative.setWordWrap(True)
        self.live_tentative.setStyleSheet("color: gray; font-style: italic;")
        self.live_status = QLabel()
        self.live_status.setWordWrap(True)
        self._live: LiveTranscriber | None = None
        self._live_signals = LiveSignals(self)
        self._live_signals.updated.connect(self._show_live)
        self.elapsed_label = QLabel("0:00")
        self.elapsed_label.setStyleSheet("font-size: 20px; font-weight: bold;")
        # Wide enough for hours, so the buttons do not shift as the clock grows.
        font = self.elapsed_label.font()
        font.setPixelSize(20)
        font.setBold(True)
        self.elapsed_label.setMinimumWidth(QFontMetrics(font).horizontalAdvance("0:00:00") + 8)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.start_button = QPushButton(themed("media-playback-start"), "Start")
        self.pause_button = QPushButton(themed("media-playback-pause"), "Pause")
        self.stop_button = QPushButton(themed("process-stop"), "Stop")
        self.start_button.clicked.connect(self.start_recording)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_recording)

        self.pending_list = QListWidget()
        self.transcribe_button = QPushButton("Transcribe")
        self.discard_button = QPushButton("Discard")
        self.transcribe_button.clicked.connect(self.transcribe_selected)
        self.discard_button.clicked.connect(self.discard_selected)
        self.pending_list.itemSelectionChanged.connect(self._update_buttons)
        self.pending_box = QGroupBox("Recordings not transcribed yet")
        pending_buttons = QHBoxLayout()
        pending_buttons.addStretch(1)
        pending_buttons.addWidget(self.transcribe_button)
        pending_buttons.addWidget(self.discard_button)
        pending_layout = QVBoxLayout(self.pending_box)
        pending_layout.addWidget(self.pending_list)
        pending_layout.addLayout(pending_buttons)
        self.pending_box.hide()

        device_row = QHBoxLayout()
        device_row.addWidget(QLabel("Input:"))
        device_row.addWidget(self.device_combo, 1)
        device_row.addWidget(self.refresh_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.elapsed_label)
        buttons.addStretch(1)
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(device_row)
        layout.addWidget(self.level_meter)
        layout.addWidget(self.live_check)
        layout.addWidget(self.live_view, 1)
        layout.addWidget(self.live_tentative)
        layout.addWidget(self.live_status)
        layout.addLayout(buttons)
        layout.addWidget(self.status_label)
        layout.addWidget(self.pending_box)

        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.device_combo.currentIndexChanged.connect(lambda _row: self._watch_device())
        self._update_buttons()
        self.load_devices()
        self.load_pending()

    # ------------------------------------------------------------ state

    @property
    def recorder(self) -> Recorder | None:
        return self._recorder

    @property
    def recording(self) -> bool:
        return self._recorder is not None and self._recorder.active

    def pending(self) -> list[Path]:
        return [Path(self.pending_list.item(row).data(Qt.ItemDataRole.UserRole)) for row in range(self.pending_list.count())]

    def _update_buttons(self) -> None:
        recording = self.recording
        self.start_button.setEnabled(not recording and bool(self._devices))
        self.pause_button.setEnabled(recording)
        self.pause_button.setText("Resume" if recording and self._recorder.state == "paused" else "Pause")
        self.stop_button.setEnabled(recording)
        self.device_combo.setEnabled(not recording)
        self.refresh_button.setEnabled(not recording)
        self.live_check.setEnabled(not recording)
        selected = bool(self.pending_list.selectedItems())
        self.transcribe_button.setEnabled(selected)
        self.discard_button.setEnabled(selected)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #b00020;" if error else "")

    # ---------------------------------------------------------- devices

    @Slot()
    def load_devices(self) -> None:
        """List the inputs in the background (loading PortAudio can take a moment)."""
        self.refresh_button.setEnabled(False)
        self._window.tasks.run(recorder.list_input_devices, self._show_devices, self._devices_failed)

    def _show_devices(self, devices: list[InputDevice]) -> None:
        self._devices = list(devices)
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        for device in self._devices:
            self.device_combo.addItem(device.label, device.index)
        default = next((row for row, device in enumerate(self._devices) if device.is_default), 0)
        self.device_combo.setCurrentIndex(default)
        self.device_combo.blockSignals(False)
        if not self._devices:
            self._say(recorder.NO_DEVICE, error=True)
        elif not self.recording:
            self._say("Ready.")
            self._watch_device()
        self._update_buttons()

    def _chosen_device(self) -> InputDevice | None:
        row = self.device_combo.currentIndex()
        return self._devices[row] if 0 <= row < len(self._devices) else None

    def _watch_device(self) -> None:
        """Show the chosen input's level before recording, so a silent or wrong device is seen at once."""
        self._stop_watching()
        device = self._chosen_device()
        if device is None or self.recording or not self.isVisible():
            return
        monitor = InputMonitor(device)
        try:
            monitor.start()
        except RecordingError as error:
            self._say(str(error), error=True)
            return
        self._monitor = monitor
        self._timer.start()

    def _stop_watching(self) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.stop()
        self.level_meter.setValue(0)

    def _devices_failed(self, error: BaseException) -> None:
        if not isinstance(error, RecordingError):
            raise error
        self._show_devices([])
        self._say(str(error), error=True)

    # -------------------------------------------------------- recording

    @Slot()
    def start_recording(self) -> None:
        if self.recording or not self._devices:
            return
        device = self._chosen_device()
        self._stop_watching()  # one stream per device: some drivers allow no second one
        rec = Recorder(self._folder, device=device.index, devices=self._devices)
        try:
            path = rec.start()
        except RecordingError as error:
            self._say(str(error), error=True)
            self._watch_device()
            return
        self._recorder = rec
        self._say(f"Recording to {path.name}…")
        self.live_view.clear()
        self.live_tentative.clear()
        self.live_status.clear()
        if self.live_check.isChecked():
            self._start_live(rec, path)
        self.elapsed_label.setText("0:00")
        self._timer.start()
        self._update_buttons()

    @Slot()
    def toggle_pause(self) -> None:
        if not self.recording:
            return
        if self._recorder.state == "paused":
            self._recorder.resume()
            self._say(f"Recording to {self._recorder.path.name}…")
            if self._live is not None:
                self.live_status.clear()
        else:
            self._recorder.pause()
            self._say("Paused: nothing is recorded until you resume.")
            if self._live is not None:
                self.live_status.setText("The live transcript is paused with the recording.")
        self._update_buttons()

    @Slot()
    def stop_recording(self) -> Recording | None:
        """Finish the file and queue it; returns the recording (None if nothing was recording)."""
        rec, self._recorder = self._recorder, None
        if rec is None or rec.state == "idle":
            return None
        self._timer.stop()
        result = rec.stop()
        live, self._live = self._live, None
        self.level_meter.setValue(0)
        self.elapsed_label.setText(format_clock(result.seconds))
        if live is not None:
            message = (f"Recorded {format_clock(result.seconds)} to {result.path.name}; it is added to the queue, "
                       "which finishes the rest of its transcript.")
            if result.seconds > 0:
                self._say(f"{result.error} {message}" if result.error else message, error=bool(result.error))
            else:
                self._say(result.error or "Nothing was recorded.", error=bool(result.error))
            self.live_tentative.clear()
            self.live_status.clear()
            self._end_live(live, result.path)
        elif result.seconds <= 0:
            self._say(result.error or "Nothing was recorded.", error=bool(result.error))
        else:
            message = f"Recorded {format_clock(result.seconds)} to {result.path.name}; it is added to the queue."
            self._say(f"{result.error} {message}" if result.error else message, error=bool(result.error))
            self.add_recording(result.path)
        self._update_buttons()
        if result.error is None:  # after a lost device, its message matters more than the meter
            self._watch_device()
        self.recording_stopped.emit(result)
        return result

    @Slot()
    def _poll(self) -> None:
        rec = self._recorder
        if rec is None:
            if self._monitor is not None:
                self.level_meter.setValue(int(min(1.0, self._monitor.take_level()) * 100))
                if self._monitor.error:
                    self._say(self._monitor.error, error=True)
                    self._stop_watching()
            return
        self.level_meter.setValue(int(min(1.0, rec.take_level()) * 100))
        self.elapsed_label.setText(format_clock(rec.seconds))
        if rec.state == "failed":  # the device went away: keep what we have, and say so
            self.stop_recording()
        elif rec.state == "recording" and rec.seconds_without_audio() > 3:
            self._say("No sound is arriving from the device…", error=True)

    # --------------------------------------------------- live transcript

    def _start_live(self, rec: Recorder, path: Path) -> None:
        """Make the recording a job now and decode it as it grows; without room in the queue, record only."""
        engine = self._window.app.engine
        try:
            job = engine.begin_recording(path, user=self._window.user)  # one insert: quick, like opening the device
        except (IntakeRefused, StoreError) as error:
            self.live_status.setText(f"No live transcript: {error} The recording goes on.")
            return
        rec.attach_job(job.id)
        self._live = LiveTranscriber(engine, job, on_update=self._live_signals.updated.emit)
        self._live.start()

    @property
    def live(self) -> LiveTranscriber | None:
        return self._live

    def live_text(self) -> str:
        """The committed live transcript as shown."""
        return self.live_view.toPlainText()

    @Slot(object)
    def _show_live(self, update: LiveUpdate) -> None:
        if self._live is None or update.job is not None and update.job.id != self._live.job.id:
            return  # a late update of a recording already stopped
        for segment in update.segments:
            if segment.text.strip():
                self.live_view.appendPlainText(live_line(segment))
        self.live_tentative.setText(update.tentative)
        if update.error:
            self.live_status.setText(f"The live transcript stopped: {update.error} The recording goes on; it is "
                                     "transcribed after Stop.")
        elif update.ended:
            self.live_status.setText("The recording's job was removed from the queue; the live transcript stopped.")
        elif update.falling_behind:
            self.live_status.setText(f"The live transcript is {update.behind_seconds:.0f} s behind: this computer cannot "
                                     "keep up. Nothing is lost; it catches up, or the rest comes after Stop.")
        elif self._recorder is not None and self._recorder.state == "recording":
            self.live_status.clear()

    def _end_live(self, live: LiveTranscriber, path: Path) -> None:
        """Stop the live decoder and queue its job, which the engine finishes from the live cursor."""
        engine = self._window.app.engine

        def work():
            live.stop(timeout=None)  # at most the pass in flight
            try:
                job = engine.end_recording(live.job.id)
            except JobStateError:  # its job was removed meanwhile: queue the file like any other
                return self._queue_file(path) if path.exists() else []
            return [IntakeResult(str(path), job=job)] if job is not None else []

        self._queue_in_background(path, work)

    # ----------------------------------------------- queueing and offers

    def add_recording(self, path: Path) -> None:
        """Queue a recording as the window's user, through the engine's intake like a dropped file.

        It stops being offered in the same background task that makes it a job, so a recording
        stopped as the app quits (whose callback never runs) is not offered again next time.
        """
        self._queue_in_background(path, lambda: self._queue_file(path))

    def _queue_file(self, path: Path) -> list[IntakeResult]:
        """Make the recording a job (on a task thread); once it is one, it is no longer offered."""
        results = self._window.app.engine.add([str(path)], user=self._window.user)
        if any(result.job is not None for result in results):
            recorder.forget(path)
        return results

    def _queue_in_background(self, path: Path, work: Callable[[], list[IntakeResult]]) -> None:
        """Run ``work`` (it queues the recording) on a task thread; say what was refused, then list what is left."""
        key = str(path)
        self._handed.add(key)

        def done(results) -> None:
            self._handed.discard(key)
            refusals = [str(result.refusal) for result in results if result.refusal is not None]
            if refusals:
                self._window.notices.add_many(refusals)
                self._say(" ".join(refusals) + " The recording is kept here to try again.", error=True)
            self._window.refresh()
            self.load_pending()
            self.recording_queued.emit(results)

        def failed(error: BaseException) -> None:
            self._handed.discard(key)
            self._say(str(error), error=True)
            self.load_pending()

        self._window.tasks.run(work, done, failed)

    @Slot()
    def load_pending(self) -> None:
        """List recordings not yet transcribed (repairing any a crash left) in the background."""
        folder = self._folder
        self._window.tasks.run(lambda: recorder.recover(folder), self._show_pending)

    def _show_pending(self, recordings: list[Recording]) -> None:
        self.pending_list.clear()
        for recording in recordings:
            if str(recording.path) in self._handed:
                continue  # being queued right now
            item = QListWidgetItem(f"{recording.path.name}  ({format_clock(recording.seconds)})"
                                   + (f": {recording.error}" if recording.error else ""))
            item.setData(Qt.ItemDataRole.UserRole, str(recording.path))
            item.setToolTip(str(recording.path))
            self.pending_list.addItem(item)
        self.pending_box.setVisible(self.pending_list.count() > 0)
        self._update_buttons()

    def _selected_paths(self) -> list[Path]:
        return [Path(item.data(Qt.ItemDataRole.UserRole)) for item in self.pending_list.selectedItems()]

    @Slot()
    def transcribe_selected(self) -> None:
        for path in self._selected_paths():
            self.add_recording(path)
        for item in self.pending_list.selectedItems():
            self.pending_list.takeItem(self.pending_list.row(item))
        self.pending_box.setVisible(self.pending_list.count() > 0)
        self._update_buttons()

    @Slot()
    def discard_selected(self, *, confirm: bool = True) -> None:
        paths = self._selected_paths()
        if not paths:
            return
        if confirm:
            answer = QMessageBox.question(
                self, "Discard recordings",
                f"Delete {len(paths)} recording{'s' if len(paths) != 1 else ''} for good?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        for path in paths:
            recorder.discard(path)
        self.load_pending()

    # ---------------------------------------------------------- closing

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self._recorder is None and self._monitor is None:
            self._watch_device()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        # Closing the window ends the recording rather than leaving it running unseen; it is queued.
        if self._recorder is not None:
            self.stop_recording()
        self._stop_watching()
        self._timer.stop()
        super().closeEvent(event)

    def reject(self) -> None:  # Escape
        self.close()
