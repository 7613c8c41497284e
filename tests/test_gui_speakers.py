"""The transcript window's segments show who speaks, each speaker in its own colour."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from transcriber.gui.transcript_view import SPEAKER_COLOURS, SegmentModel
from transcriber.jobs import Segment

pytestmark = pytest.mark.gui


def test_segments_show_speaker_names_in_their_colours(qtbot):
    model = SegmentModel()
    model.merge([
        Segment(0, 0.0, 2.0, " Hello there.", speaker="Dr. Amara", speaker_label=1),
        Segment(1, 2.0, 4.0, " Hi.", speaker="Speaker 1", speaker_label=0),
        Segment(2, 4.0, 5.0, " No speakers here."),
    ])
    text = [model.data(model.index(row, SegmentModel.TEXT)) for row in range(3)]
    assert text == ["Dr. Amara: Hello there.", "Speaker 1: Hi.", "No speakers here."]
    # Editing edits the words only, never the name.
    assert model.data(model.index(0, SegmentModel.TEXT), Qt.ItemDataRole.EditRole) == "Hello there."
    colours = [model.data(model.index(row, SegmentModel.TEXT), Qt.ItemDataRole.ForegroundRole) for row in range(3)]
    assert colours[0] == SPEAKER_COLOURS[1] and colours[1] == SPEAKER_COLOURS[0] and colours[2] is None
