"""The automation window and the statistics view's new figures (offscreen, real store, real HTTP receiver, no model)."""

from __future__ import annotations

import pytest

from receiver import Receiver
from transcriber.services.webhooks import verify

pytestmark = pytest.mark.gui


def test_webhooks_and_watch_folders_from_the_window(make_gui, qtbot, tmp_path):
    server = Receiver().start()
    try:
        gui = make_gui()
        view = gui.window.open_automation()
        qtbot.waitUntil(lambda: view.loaded >= 1, timeout=10000)
        assert view.endpoints_table.rowCount() == 0

        view.add_webhook(server.url, "window-secret", ("job.completed",), "files")
        qtbot.waitUntil(lambda: view.endpoints_table.rowCount() == 1, timeout=10000)
        assert view.endpoints_table.item(0, 1).text() == server.url
        assert view.endpoints_table.item(0, 2).text() == "job.completed"

        view.send_test(view.endpoints[0].id)
        qtbot.waitUntil(lambda: view.log_table.rowCount() == 1, timeout=20000)
        assert "HTTP 200 (delivered)" in view.status.text()
        assert [view.log_table.item(0, column).text() for column in (2, 3, 4, 5)] == ["webhook.test", "-", "200", "delivered"]
        (item,) = server.received
        assert verify("window-secret", item.headers["X-Transcriber-Timestamp"], item.body,
                      item.headers["X-Transcriber-Signature"])

        inbox = tmp_path / "inbox"
        inbox.mkdir()
        view.add_watch_folder(path=str(inbox), model="base", after="move", move_to=str(tmp_path / "done"))
        qtbot.waitUntil(lambda: view.folders_table.rowCount() == 1, timeout=10000)
        assert view.folders_table.item(0, 1).text() == str(inbox)
        assert view.folders_table.item(0, 3).text() == f"model base; then move:{tmp_path / 'done'}"
        assert view.folders_table.item(0, 4).text() == "none yet"
        assert [folder.path for folder in gui.app.store.automation.watch_folders()] == [str(inbox)]

        view.remove_watch_folder(view.folders[0].id)
        view.remove_webhook(view.endpoints[0].id)
        qtbot.waitUntil(lambda: view.folders_table.rowCount() == 0 and view.endpoints_table.rowCount() == 0, timeout=10000)
        assert gui.app.store.automation.webhooks() == [] and gui.app.store.automation.watch_folders() == []
    finally:
        server.stop()


def test_the_webhook_dialog_checks_what_it_is_given(qapp):
    from transcriber.gui.automation_view import WebhookDialog

    dialog = WebhookDialog()
    dialog.url.setText("not a url")
    dialog._check()
    assert "not an http" in dialog.error.text() and not dialog.result()
    dialog.url.setText("https://example.org/hook")
    for box in dialog.events.values():
        box.setChecked(False)
    dialog._check()
    assert "Unknown event" in dialog.error.text()
    dialog.events["job.failed"].setChecked(True)
    assert dialog.values()[0] == "https://example.org/hook" and dialog.values()[2] == ("job.failed",)


def test_statistics_view_shows_days_and_failure_causes(qapp):
    from transcriber.gui.stats_view import StatsWindow

    document = {
        "models": [],
        "by_file_size": [],
        "daily": [
            {"day": "2026-11-30", "model": "tiny.en", "jobs_completed": 2, "jobs_failed": 1, "audio_hours": 0.5,
             "processing_hours": 0.083333, "mean_speed": 6.0, "mean_queue_wait_seconds": 90.0},
            {"day": "2026-12-01", "model": "tiny.en", "jobs_completed": 0, "jobs_failed": 1, "audio_hours": 0.0,
             "processing_hours": 0.0, "mean_speed": None, "mean_queue_wait_seconds": None},
        ],
        "failures": [{"day": "2026-11-30", "model": "tiny.en", "cause": "audio", "jobs": 1},
                     {"day": "2026-12-01", "model": "tiny.en", "cause": "audio", "jobs": 1}],
    }
    view = StatsWindow(app=None, tasks=None)
    view.show_document(document)
    assert [view.daily_table.item(0, column).text() for column in range(7)] == \
        ["2026-12-01", "tiny.en", "0", "1", "0.000", "–", "–"]
    assert [view.daily_table.item(1, column).text() for column in range(7)] == \
        ["2026-11-30", "tiny.en", "2", "1", "0.500", "6.0×", "1.50"]
    bars = view.daily_view.chart().series()[0].barSets()[0]
    assert [bars.at(i) for i in range(bars.count())] == [0.5, 0.0]
    assert view.failures_label.text() == "Failures by cause: audio 2"
    view.close()


def test_the_settings_dialog_holds_the_webhook_retry_settings(make_gui, qtbot):
    from transcriber.gui.settings_dialog import SettingsDialog

    gui = make_gui(start=False)
    dialog = SettingsDialog(gui.app.store, gui.window)
    qtbot.addWidget(dialog)
    assert [dialog.value_text(key) for key in ("webhook_timeout_seconds", "webhook_first_retry_seconds",
                                               "webhook_retry_hours")] == ["10", "30", "24"]
    dialog.set_value_text("webhook_first_retry_seconds", "0")
    assert not dialog.save() and "must be at least 1" in dialog.error_text("webhook_first_retry_seconds")
    dialog.set_value_text("webhook_first_retry_seconds", "5")
    dialog.accept()
    settings = gui.app.store.settings.read()
    assert settings.webhook_first_retry_seconds == 5
    from transcriber.services.webhooks import RetryPolicy

    assert RetryPolicy.from_settings(settings).next_attempt(1, 0.0, 100.0) == 105.0
