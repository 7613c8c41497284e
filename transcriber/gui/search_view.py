"""Search the whole library from the window: a dock with a search field and the hits grouped by file.

The query runs on the window's task pool (a large library takes a few milliseconds, a busy
disk longer) and is re-run as the user types, after a short pause; an answer to an older
query than the one shown is dropped. Activating a hit asks the main window to open that
transcript at the segment (``hit_activated``).
"""

from __future__ import annotations

import html
from collections import OrderedDict
from typing import Sequence

from PySide6.QtCore import QModelIndex, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAbstractTextDocumentLayout, QPalette, QTextDocument
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QLineEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..app import App
from ..audio.decode import format_clock
from ..errors import TranscriberError
from ..jobs import Job, Segment
from ..store.search import SearchHit, SearchResults
from .tasks import TaskRunner

HIT_ROLE = Qt.ItemDataRole.UserRole + 1  # the SearchHit of a hit row
HTML_ROLE = Qt.ItemDataRole.UserRole + 2  # the snippet as HTML, the match in bold

# Marks around matching words in snippets: characters no transcript holds, replaced by tags after escaping.
_OPEN, _CLOSE = "\x02", "\x03"


def snippet_html(snippet: str) -> str:
    """A snippet with the marked words in bold, everything else escaped."""
    return html.escape(snippet.strip()).replace(_OPEN, "<b>").replace(_CLOSE, "</b>")


def grouped_by_file(hits: Sequence[SearchHit]) -> "OrderedDict[int, list[SearchHit]]":
    """Hits by job, the job of the best hit first; within a job, in the order of the recording."""
    groups: OrderedDict[int, list[SearchHit]] = OrderedDict()
    for hit in hits:
        groups.setdefault(hit.job_id, []).append(hit)
    for job_hits in groups.values():
        job_hits.sort(key=lambda hit: (hit.start, hit.segment_index))
    return groups


class _SnippetDelegate(QStyledItemDelegate):
    """Paints a cell's HTML_ROLE as rich text (the match in bold)."""

    def _document(self, option: QStyleOptionViewItem, text: str) -> QTextDocument:
        document = QTextDocument()
        document.setDefaultFont(option.font)
        document.setDocumentMargin(2)
        document.setHtml(text)
        return document

    def paint(self, painter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        text = index.data(HTML_ROLE)
        if text is None:
            super().paint(painter, option, index)
            return
        self.initStyleOption(option, index)
        style = option.widget.style() if option.widget else None
        option.text = ""
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        document = self._document(option, text)
        context = QAbstractTextDocumentLayout.PaintContext()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        context.palette.setColor(QPalette.ColorRole.Text, option.palette.color(role))
        painter.save()
        painter.translate(option.rect.topLeft())
        painter.setClipRect(option.rect.translated(-option.rect.topLeft()))
        document.documentLayout().draw(painter, context)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802 (Qt override)
        text = index.data(HTML_ROLE)
        if text is None:
            return super().sizeHint(option, index)
        document = self._document(option, text)
        return QSize(int(document.idealWidth()), int(document.size().height()))


class LibrarySearch(QDockWidget):
    """A search field over every transcript of one user's jobs, and its hits grouped by file.

    Args:
        app: the opened data folder.
        tasks: where the query runs.
        user: whose jobs are searched.
        delay_ms: the pause in typing after which the query runs.
    """

    hit_activated = Signal(object)  # SearchHit
    results_shown = Signal(object)  # SearchResults (or None when the field is empty)

    def __init__(self, app: App, tasks: TaskRunner, *, user: str, delay_ms: int = 200, parent=None):
        super().__init__("Search transcripts", parent)
        self.setObjectName("library_search")
        self.app = app
        self.tasks = tasks
        self.user = user
        self.results: SearchResults | None = None
        self._asked = 0  # number of the last query sent
        self._shown = 0  # number of the query whose answer is shown

        self.field = QLineEdit()
        self.field.setPlaceholderText('Search all transcripts: words, "a phrase", prefix*, OR, NOT')
        self.field.setClearButtonEnabled(True)
        self.field.textChanged.connect(self._on_text_changed)
        self.field.returnPressed.connect(self._on_return)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Time", "Text"])
        self.tree.setItemDelegateForColumn(1, _SnippetDelegate(self.tree))
        self.tree.setUniformRowHeights(False)
        self.tree.setRootIsDecorated(True)
        self.tree.itemActivated.connect(self._on_item_activated)
        self.status = QLabel()
        self.status.setWordWrap(True)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.field)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.status)
        self.setWidget(body)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.run_query)

    # ---------------------------------------------------------------- query

    def focus_field(self) -> None:
        """Show the dock and put the cursor in the search field, its text selected to type over."""
        self.show()
        self.raise_()
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    @Slot(str)
    def _on_text_changed(self, _text: str) -> None:
        self._timer.start()

    @Slot()
    def _on_return(self) -> None:
        if self._timer.isActive() or self._shown != self._asked:
            self._timer.stop()
            self.run_query()
            return
        first = self._first_hit_item()
        if first is not None:
            self._on_item_activated(first, 0)

    def refresh_soon(self) -> None:
        """New transcript text arrived: run the shown query again after the usual pause."""
        if self.isVisible() and self.field.text().strip() and not self._timer.isActive():
            self._timer.start()

    @Slot()
    def run_query(self) -> None:
        """Search for the field's text now (off the GUI thread); the answer replaces the shown hits."""
        query = self.field.text()
        self._asked += 1
        number = self._asked
        if not query.strip():
            self._show(number, None)
            return
        store, user = self.app.store, self.user
        self.tasks.run(
            lambda: store.search.search(query, user=user, marks=(_OPEN, _CLOSE)),
            lambda results: self._show(number, results),
            lambda error: self._failed(number, error),
        )

    def _failed(self, number: int, error: BaseException) -> None:
        if not isinstance(error, TranscriberError):
            raise error
        if number >= self._shown:
            self._shown = number
            self.results = None
            self.tree.clear()
            self.status.setText(str(error))
            self.results_shown.emit(None)

    def _show(self, number: int, results: SearchResults | None) -> None:
        if number < self._shown:
            return  # an older query answered late
        self._shown = number
        self.results = results
        self.tree.clear()
        if results is None:
            self.status.setText("")
            self.results_shown.emit(None)
            return
        groups = grouped_by_file(results.hits)
        for job_hits in groups.values():
            first = job_hits[0]
            count = f"{len(job_hits)} hit{'s' if len(job_hits) != 1 else ''}"
            parent = QTreeWidgetItem([first.file_name, count])
            parent.setToolTip(0, first.path)
            parent.setFirstColumnSpanned(True)
            parent.setText(0, f"{first.file_name} — {count}")
            for hit in job_hits:
                child = QTreeWidgetItem([format_clock(hit.start), hit.snippet.replace(_OPEN, "").replace(_CLOSE, "").strip()])
                child.setData(0, HIT_ROLE, hit)
                child.setData(1, HTML_ROLE, snippet_html(hit.snippet))
                child.setToolTip(1, hit.text.strip())
                parent.addChild(child)
            self.tree.addTopLevelItem(parent)
            parent.setExpanded(True)
        self.tree.resizeColumnToContents(0)
        self.status.setText(self._summary(results, len(groups)))
        self.results_shown.emit(results)

    @staticmethod
    def _summary(results: SearchResults, files: int) -> str:
        if not results.hits:
            text = f"No match for {results.query.strip()!r}."
        else:
            hits = len(results.hits)
            text = (f"{hits}{'+' if results.more else ''} hit{'s' if hits != 1 else ''} in {files} "
                    f"file{'s' if files != 1 else ''}, best first. Enter or double-click opens one.")
        return f"{results.note} {text}" if results.note else text

    # ------------------------------------------------------------- opening

    def hit_items(self) -> list[QTreeWidgetItem]:
        """Every hit row, file by file (for keyboard use and tests)."""
        items = []
        for top in range(self.tree.topLevelItemCount()):
            parent = self.tree.topLevelItem(top)
            items += [parent.child(row) for row in range(parent.childCount())]
        return items

    def _first_hit_item(self) -> QTreeWidgetItem | None:
        items = self.hit_items()
        return items[0] if items else None

    @Slot(QTreeWidgetItem, int)
    def _on_item_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        hit = item.data(0, HIT_ROLE)
        if hit is None and item.childCount():  # a file's row: its first hit
            hit = item.child(0).data(0, HIT_ROLE)
        if hit is not None:
            self.hit_activated.emit(hit)

    @Slot(object, object)
    def on_segments_added(self, _job: Job, _segments: list[Segment]) -> None:
        self.refresh_soon()
