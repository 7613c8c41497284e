"""Non-modal notices at the top of the window: one line per refused file or engine problem."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QSizePolicy, QStyle, QVBoxLayout


class NoticePanel(QFrame):
    """A list of messages the user can read at leisure and dismiss; hidden while empty."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("notices")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.setStyleSheet("#notices { background: #fff4e5; border: 1px solid #f0c36d; border-radius: 4px; }")
        self._title = QLabel()
        self._list = QListWidget()
        # One line per message (the tooltip holds all of it): wrapped items make every
        # addition re-measure the whole list, which stalls the window after hundreds of refusals.
        self._list.setUniformItemSizes(True)
        self._list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self._list.setStyleSheet("QListWidget { background: transparent; border: none; }")
        dismiss = QPushButton("Dismiss")
        dismiss.setToolTip("Clear these messages")
        dismiss.clicked.connect(self.clear)
        header = QHBoxLayout()
        header.addWidget(self._title, 1)
        header.addWidget(dismiss)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addLayout(header)
        layout.addWidget(self._list)
        self.hide()

    def messages(self) -> list[str]:
        return [self._list.item(row).text() for row in range(self._list.count())]

    def add(self, message: str, *, error: bool = True, about: str | None = None) -> None:
        self.add_many([(message, about)], error=error)

    def add_many(self, messages: list[str | tuple[str, str | None]], *, error: bool = True) -> None:
        """Show messages; a message given as ``(text, about)`` concerns the file ``about`` (see ``withdraw``)."""
        if not messages:
            return
        icon = self.style().standardIcon(
            QStyle.StandardPixmap.SP_MessageBoxWarning if error else QStyle.StandardPixmap.SP_MessageBoxInformation
        )
        for entry in messages:
            message, about = entry if isinstance(entry, tuple) else (entry, None)
            item = QListWidgetItem(icon, message)
            item.setToolTip(message)
            item.setData(Qt.ItemDataRole.UserRole, about)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self._list.addItem(item)
        self._list.scrollToBottom()
        self._update_title()
        self.show()
        self.changed.emit()

    def withdraw(self, abouts) -> None:
        """Remove the messages about these files (they were accepted since: the message is no longer true)."""
        abouts = set(abouts)
        removed = False
        for row in reversed(range(self._list.count())):
            if self._list.item(row).data(Qt.ItemDataRole.UserRole) in abouts:
                self._list.takeItem(row)
                removed = True
        if not removed:
            return
        if self._list.count():
            self._update_title()
        else:
            self.hide()
        self.changed.emit()

    @Slot()
    def clear(self) -> None:
        self._list.clear()
        self.hide()
        self.changed.emit()

    def _update_title(self) -> None:
        count = self._list.count()
        # As tall as its messages, up to four lines; more scroll.
        line = max(self._list.sizeHintForRow(0), self.fontMetrics().height() + 6)
        self._list.setFixedHeight(min(count, 4) * line + 2 * self._list.frameWidth() + 8)
        self._list.setVerticalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAsNeeded if count > 4 else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
        self._title.setText(f"<b>{count} message{'s' if count != 1 else ''}</b>")
