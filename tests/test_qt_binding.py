"""The Qt binding must keep Python's reference counts straight.

PySide6 6.12.0 under Python 3.11 does not: every call that returns None (any void method,
``QStyleOptionViewItem.widget``, ...) and every ``Signal.emit()`` releases a reference
it never took, and within minutes the window aborts with "none_dealloc: deallocating
None". Python 3.12 made None and True immortal, so there it is harmless. pyproject.toml
keeps PySide6 below 6.12 on Python < 3.12; this test fails loudly if a broken build is installed.
"""

from __future__ import annotations

import sys

import PySide6
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QStyleOptionViewItem


class _Sender(QObject):
    changed = Signal(int)


def test_calls_and_signals_keep_the_reference_counts_of_none_and_true(qapp):
    label, option, sender = QLabel(), QStyleOptionViewItem(), _Sender()
    received = []
    sender.changed.connect(received.append)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for number in range(3000):
        label.setText("x")  # returns None
        option.widget  # a null widget: None
        sender.changed.emit(number)  # returns True
    drift = (sys.getrefcount(None) - none_before, sys.getrefcount(True) - true_before)
    assert len(received) == 3000
    assert all(abs(value) < 500 for value in drift), (
        f"PySide6 {PySide6.__version__} on Python {sys.version.split()[0]} loses references "
        f"(None {drift[0]:+d}, True {drift[1]:+d} over 3000 calls): install a build below 6.12 or use Python 3.12+"
    )
