"""The window's library search with the real engine, model and SQLite (offscreen): type, see hits by file, open one."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from transcriber.jobs import JobStatus

pytestmark = pytest.mark.gui

JFK, FRENCH = "en_jfk.flac", "fr_leopard_test_fr.wav"


def file_rows(dock) -> list[str]:
    return [dock.tree.topLevelItem(row).text(0) for row in range(dock.tree.topLevelItemCount())]


def test_typing_shows_hits_by_file_and_a_hit_opens_its_transcript_at_the_segment(make_gui, qtbot, corpus):
    gui = make_gui([corpus[JFK]["path"], corpus[FRENCH]["path"]])
    dock = gui.window.library_search
    assert not dock.isVisible()

    # Ctrl+Shift+F shows the search with the cursor in its field.
    gui.window.show()
    qtbot.waitExposed(gui.window)
    gui.window.activateWindow()
    qtbot.waitUntil(gui.window.isActiveWindow, timeout=5000)
    gui.window.table.setFocus()
    qtbot.keyClick(gui.window.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(dock.isVisible, timeout=5000)
    assert dock.field.hasFocus() or gui.window.focusWidget() is dock.field

    # Typed before anything is transcribed: the hit appears as the segments are committed.
    qtbot.keyClicks(dock.field, "forets")
    qtbot.waitUntil(lambda: dock.results is not None, timeout=10000)
    qtbot.waitUntil(lambda: len(gui.window.model.jobs()) == 2
                    and all(job.status is JobStatus.COMPLETED for job in gui.window.model.jobs()), timeout=180000)
    jobs = {job.file_name: job.id for job in gui.window.model.jobs()}
    qtbot.waitUntil(lambda: file_rows(dock) == [f"{FRENCH} — 1 hit"], timeout=10000)  # accents ignored
    (hit_item,) = dock.hit_items()
    assert "<b>forêts</b>" in hit_item.data(1, Qt.ItemDataRole.UserRole + 2)

    # Hits follow the typing: a part of a word, then a prefix, then words of both files.
    dock.field.clear()
    qtbot.keyClicks(dock.field, "coun")
    qtbot.waitUntil(lambda: dock.results is not None and dock.results.query == "coun", timeout=10000)
    assert file_rows(dock) == [] and "No match" in dock.status.text()
    qtbot.keyClicks(dock.field, "*")
    qtbot.waitUntil(lambda: len(file_rows(dock)) == 1 and file_rows(dock)[0].startswith(JFK), timeout=10000)
    dock.field.setText("forets OR country")
    qtbot.waitUntil(lambda: len(file_rows(dock)) == 2, timeout=10000)
    assert "2 files" in dock.status.text()

    # Within a file, hits are in the order of the recording; Enter on the later one opens it there.
    jfk_hits = [item.data(0, Qt.ItemDataRole.UserRole + 1) for item in dock.hit_items()
                if item.data(0, Qt.ItemDataRole.UserRole + 1).job_id == jobs[JFK]]
    assert len(jfk_hits) >= 2 and jfk_hits == sorted(jfk_hits, key=lambda hit: hit.start)
    target = jfk_hits[-1]
    item = next(item for item in dock.hit_items() if item.data(0, Qt.ItemDataRole.UserRole + 1) == target)
    dock.tree.setCurrentItem(item)
    dock.tree.setFocus()
    qtbot.keyClick(dock.tree, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: jobs[JFK] in gui.window.transcript_windows(), timeout=5000)
    view = gui.window.transcript_windows()[jobs[JFK]]
    qtbot.waitUntil(lambda: view.selected_row() is not None, timeout=10000)
    row = view.selected_row()
    segment = view.model.segment_at(row)
    assert segment.index == target.segment_index and segment.start == target.start and row > 0
    assert view.model.current_row == row  # highlighted
    assert view.model.index(row, 1).data(Qt.ItemDataRole.BackgroundRole) is not None
    from PySide6.QtMultimedia import QMediaDevices

    if QMediaDevices.audioOutputs():  # plays from the segment's start
        player = view.player()
        assert player.source().toLocalFile() == str(corpus[JFK]["path"])
        qtbot.waitUntil(lambda: player.position() >= int(target.start * 1000) - 50, timeout=5000)
    else:  # nothing can play here, and the window says so
        assert "Cannot play" in view.status.text()

    # A query the index cannot parse is searched as plain words, and the dock says so.
    dock.field.setText('"fellow americans')
    qtbot.waitUntil(lambda: dock.results is not None and dock.results.query == '"fellow americans', timeout=10000)
    assert "not valid search syntax" in dock.status.text() and file_rows(dock) == [f"{JFK} — 1 hit"]
    dock.field.setText("((")
    qtbot.waitUntil(lambda: "Nothing to search for" in dock.status.text(), timeout=10000)
    assert file_rows(dock) == []


def test_an_existing_library_is_indexed_before_the_window_opens_with_progress(make_gui, qtbot, corpus, data_dir):
    from test_search import pre_search_library

    pre_search_library(data_dir, corpus, 30_000)
    gui = make_gui(start=False, user="ann")
    assert gui.upgrade_progress.last == (30_000, 30_000)  # the dialog went to the end
    dock = gui.window.open_search()
    dock.field.setText('"fellow americans"')
    qtbot.waitUntil(lambda: dock.hit_items() != [], timeout=10000)
    assert dock.results.more and file_rows(dock) == ["interviews.flac — 50 hits"]
