"""Statistics: the ``transcriber stats`` figures, with charts of speed by model, processing time by file size and audio per day."""

from __future__ import annotations

import math

from PySide6.QtCharts import QBarCategoryAxis, QBarSeries, QBarSet, QChart, QChartView, QValueAxis
from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ..app import App
from ..reports.stats import stats_document
from .icons import app_icon
from .tasks import TaskRunner


def size_label(bucket: dict) -> str:
    high = bucket["size_mb_to"]
    return f"{bucket['size_mb_from']:g}–{high:g} MB" if high is not None else f"≥ {bucket['size_mb_from']:g} MB"


def _bar_chart(title: str, categories: list[str], values: list[float], axis_title: str, colour: str) -> QChart:
    chart = QChart()
    chart.setTitle(title)
    chart.legend().hide()
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    bars = QBarSet(axis_title)
    bars.append([float(value) for value in values])
    bars.setColor(colour)
    bars.setLabelColor(Qt.GlobalColor.black)
    series = QBarSeries()
    series.append(bars)
    series.setLabelsVisible(True)
    series.setLabelsFormat("@value")
    series.setLabelsPrecision(3)
    chart.addSeries(series)
    x_axis = QBarCategoryAxis()
    x_axis.append(categories or ["no data yet"])
    chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
    series.attachAxis(x_axis)
    y_axis = QValueAxis()
    y_axis.setTitleText(axis_title)
    top = max(values + [0.0]) * 1.15 or 1.0
    y_axis.setRange(0, top)
    y_axis.applyNiceNumbers()  # round ticks (0, 5, 10, ...), not 0.38, 0.77, ...
    # Enough decimals that no two ticks read the same, no more.
    step = (y_axis.max() - y_axis.min()) / max(1, y_axis.tickCount() - 1)
    digits = max(0, math.ceil(-math.log10(step) - 1e-9)) if step > 0 else 0
    y_axis.setLabelFormat(f"%.{digits}f")
    chart.addAxis(y_axis, Qt.AlignmentFlag.AlignLeft)
    series.attachAxis(y_axis)
    if len(categories) > 6:  # many days: slanted labels stay readable instead of overlapping
        x_axis.setLabelsAngle(-45)
    return chart


def _fit_headers(table: QTableWidget) -> None:
    """Columns at least as wide as their headers (never clipped), the last one taking what is left."""
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)


class StatsWindow(QWidget):
    """Completed jobs per model (count, audio hours, mean processing time, speed) and by file size."""

    def __init__(self, app: App, tasks: TaskRunner, parent=None):
        super().__init__(parent, Qt.WindowType.Window)
        self.app = app
        self.tasks = tasks
        self.document: dict | None = None
        self.setWindowTitle("transcriber — statistics")
        self.setWindowIcon(app_icon())
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.resize(960, 640)
        self.models_table = QTableWidget(0, 5)
        self.models_table.setHorizontalHeaderLabels(["Model", "Jobs", "Audio (h)", "Mean processing (min)", "Speed (× real time)"])
        _fit_headers(self.models_table)
        self.models_table.verticalHeader().hide()
        self.models_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.daily_table = QTableWidget(0, 7)
        self.daily_table.setHorizontalHeaderLabels(
            ["Day", "Model", "Completed", "Failed", "Audio (h)", "Speed (× real time)", "Mean wait in queue (min)"])
        _fit_headers(self.daily_table)
        self.daily_table.verticalHeader().hide()
        self.daily_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.failures_label = QLabel()
        self.failures_label.setWordWrap(True)
        self.speed_view = QChartView()
        self.size_view = QChartView()
        self.daily_view = QChartView()
        for view in (self.speed_view, self.size_view, self.daily_view):
            view.setRenderHint(QPainter.RenderHint.Antialiasing)
            view.setMinimumHeight(280)
        self.note = QLabel()
        charts = QHBoxLayout()
        charts.addWidget(self.speed_view)
        charts.addWidget(self.size_view)
        charts.addWidget(self.daily_view)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Completed jobs by model</b> (the figures of <code>transcriber stats</code>)"))
        layout.addWidget(self.models_table)
        layout.addLayout(charts, 1)
        layout.addWidget(QLabel("<b>By day and model</b> (<code>transcriber stats --csv</code>)"))
        layout.addWidget(self.daily_table)
        layout.addWidget(self.failures_label)
        layout.addWidget(self.note)

    def reload(self) -> None:
        app = self.app
        self.tasks.run(lambda: stats_document(app.store.stats), self.show_document)

    def show_document(self, document: dict) -> None:
        self.document = document
        models = document["models"]
        self.models_table.setRowCount(len(models))
        header = self.models_table.horizontalHeader().sizeHint().height()
        rows = max(1, len(models)) * self.models_table.verticalHeader().defaultSectionSize()
        self.models_table.setFixedHeight(header + rows + 2 * self.models_table.frameWidth() + 2)
        for row, entry in enumerate(models):
            values = [entry["model"], entry["jobs_completed"], f"{entry['audio_hours']:.3f}",
                      f"{entry['mean_processing_minutes']:.2f}", f"{entry['speed']:.1f}×"]
            for column, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.models_table.setItem(row, column, item)
        self.speed_view.setChart(_bar_chart(
            "Speed by model", [entry["model"] for entry in models], [entry["speed"] for entry in models],
            "× real time", "#3f7fd9"))
        buckets = document["by_file_size"]
        self.size_view.setChart(_bar_chart(
            "Processing time by file size", [size_label(bucket) for bucket in buckets],
            [bucket["mean_processing_minutes"] for bucket in buckets], "mean minutes", "#e0a030"))
        self._show_daily(document.get("daily", []), document.get("failures", []))
        total = sum(entry["jobs_completed"] for entry in models)
        self.note.setText(f"{total} completed job{'s' if total != 1 else ''}." if total else
                          "No completed jobs yet: the charts fill in as jobs finish.")

    def _show_daily(self, daily: list[dict], failures: list[dict]) -> None:
        def number(value, scale=1.0, digits=2, suffix=""):
            return "–" if value is None else f"{value * scale:.{digits}f}{suffix}"

        self.daily_table.setRowCount(len(daily))
        for row, entry in enumerate(reversed(daily)):  # newest day first
            values = [entry["day"], entry["model"], entry["jobs_completed"], entry["jobs_failed"],
                      number(entry["audio_hours"], digits=3), number(entry["mean_speed"], digits=1, suffix="×"),
                      number(entry["mean_queue_wait_seconds"], 1 / 60)]
            for column, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                if column > 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.daily_table.setItem(row, column, item)
        hours: dict[str, float] = {}
        for entry in daily:
            hours[entry["day"]] = hours.get(entry["day"], 0.0) + entry["audio_hours"]
        days = sorted(hours)[-14:]  # the last two weeks with work
        self.daily_view.setChart(_bar_chart(
            "Audio transcribed per day", [day[5:] for day in days], [hours[day] for day in days], "hours", "#4caf78"))
        causes: dict[str, int] = {}
        for entry in failures:
            causes[entry["cause"]] = causes.get(entry["cause"], 0) + entry["jobs"]
        self.failures_label.setText(
            "Failures by cause: " + ", ".join(f"{cause} {count}" for cause, count in sorted(causes.items(), key=lambda i: -i[1]))
            if causes else "No failed jobs.")
