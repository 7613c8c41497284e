"""A progress bar painted in the queue table's progress column (no widget per row)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from .queue_model import PROGRESS_ROLE

_TRACK = QColor("#e3e7ee")
_FILL = QColor("#3f7fd9")
_BORDER = QColor("#b8c2d0")


class ProgressDelegate(QStyledItemDelegate):
    """Draws the row's progress (0..1, from PROGRESS_ROLE) as a bar with its percentage.

    Painted with plain QPainter calls rather than the style's progress bar: the table
    repaints often while jobs run, and this keeps each cell cheap.
    """

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        progress = index.data(PROGRESS_ROLE)
        if progress is None:
            super().paint(painter, option, index)
            return
        painter.save()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(option.rect, option.palette.brush(QPalette.ColorRole.Highlight))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        track = QRectF(option.rect.adjusted(4, 4, -4, -4))
        painter.setPen(_BORDER)
        painter.setBrush(_TRACK)
        painter.drawRoundedRect(track, 3, 3)
        if progress > 0:
            filled = QRectF(track.x(), track.y(), max(track.height() / 2, track.width() * progress), track.height())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(_FILL)
            painter.drawRoundedRect(filled, 3, 3)
        painter.setPen(QColor("#ffffff") if progress >= 0.55 else QColor("#1d2733"))
        painter.drawText(track, Qt.AlignmentFlag.AlignCenter, f"{progress * 100:.0f}%")
        painter.restore()
