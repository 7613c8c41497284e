"""A throwaway desktop for tray tests: Xvfb, a private session bus, a StatusNotifierWatcher and a notification server.

The watcher and the notification server are small dbus-next services running on an
asyncio loop in a thread of the test process; they record what the app under test calls.
Every helper process is ended in ``close()`` (terminate, then kill if it lingers).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

from dbus_next import BusType, Variant
from dbus_next.aio import MessageBus
from dbus_next.constants import PropertyAccess
from dbus_next.service import ServiceInterface, dbus_property, method, signal


@dataclass
class Recorded:
    """What the app did on the bus."""

    items: list[str] = field(default_factory=list)  # RegisterStatusNotifierItem arguments
    notifications: list[dict] = field(default_factory=list)  # Notify calls, with their id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def notified(self, text: str) -> dict | None:
        with self.lock:
            return next((n for n in self.notifications if text in n["summary"] or text in n["body"]), None)


class StatusNotifierWatcher(ServiceInterface):
    def __init__(self, recorded: Recorded):
        super().__init__("org.kde.StatusNotifierWatcher")
        self.recorded = recorded

    @method()
    def RegisterStatusNotifierItem(self, service: "s"):  # noqa: N802, F821 (D-Bus names and signatures)
        with self.recorded.lock:
            self.recorded.items.append(service)
        self.StatusNotifierItemRegistered(service)

    @method()
    def RegisterStatusNotifierHost(self, service: "s"):  # noqa: N802, F821
        pass

    @signal()
    def StatusNotifierItemRegistered(self, service: "s") -> "s":  # noqa: N802, F821
        return service

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> "as":  # noqa: N802, F821
        with self.recorded.lock:
            return list(self.recorded.items)

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> "b":  # noqa: N802, F821
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> "i":  # noqa: N802, F821
        return 0


class NotificationServer(ServiceInterface):
    def __init__(self, recorded: Recorded):
        super().__init__("org.freedesktop.Notifications")
        self.recorded = recorded
        self._next_id = 0

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s", body: "s",  # noqa: N802, F821
               actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":  # noqa: F821
        self._next_id += 1
        with self.recorded.lock:
            self.recorded.notifications.append(
                {"id": self._next_id, "app": app_name, "summary": summary, "body": body, "actions": list(actions)}
            )
        return self._next_id

    @method()
    def GetCapabilities(self) -> "as":  # noqa: N802, F821
        return ["body", "actions", "icon-static"]

    @method()
    def GetServerInformation(self) -> "ssss":  # noqa: N802, F821
        return ["test-notifications", "transcriber-tests", "1.0", "1.2"]

    @method()
    def CloseNotification(self, notification_id: "u"):  # noqa: N802, F821
        self.NotificationClosed(notification_id, 3)

    @signal()
    def ActionInvoked(self, notification_id: "u", action_key: "s") -> "us":  # noqa: N802, F821
        return [notification_id, action_key]

    @signal()
    def NotificationClosed(self, notification_id: "u", reason: "u") -> "uu":  # noqa: N802, F821
        return [notification_id, reason]


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Desktop:
    """Start with ``Desktop.start()``; ``env`` is what a GUI subprocess needs; ``close()`` ends everything."""

    def __init__(self):
        self.xvfb: subprocess.Popen | None = None
        self.bus_daemon: subprocess.Popen | None = None
        self.recorded = Recorded()
        self.env: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._notifications: NotificationServer | None = None
        self._runtime = tempfile.mkdtemp(prefix="desktop-")

    @staticmethod
    def missing() -> str | None:
        for tool in ("Xvfb", "dbus-daemon"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed"
        return None

    def start(self) -> "Desktop":
        try:
            self._start_xvfb()
            self._start_bus()
            self._start_services()
        except BaseException:
            self.close()
            raise
        return self

    def _start_xvfb(self) -> None:
        read_fd, write_fd = os.pipe()
        self.xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        number = b""
        deadline = time.monotonic() + 20
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            chunk = os.read(read_fd, 16)
            if not chunk:
                break
            number += chunk
        os.close(read_fd)
        if not number.strip():
            raise RuntimeError("Xvfb did not start")
        self.env["DISPLAY"] = f":{number.decode().strip()}"

    def _start_bus(self) -> None:
        self.bus_daemon = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        address = self.bus_daemon.stdout.readline().strip()
        if not address:
            raise RuntimeError("dbus-daemon did not start")
        self.env["DBUS_SESSION_BUS_ADDRESS"] = address
        self.env["XDG_RUNTIME_DIR"] = self._runtime

    def _start_services(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve():
            try:
                bus = await MessageBus(bus_address=self.env["DBUS_SESSION_BUS_ADDRESS"]).connect()
                bus.export("/StatusNotifierWatcher", StatusNotifierWatcher(self.recorded))
                await bus.request_name("org.kde.StatusNotifierWatcher")
                notify_bus = await MessageBus(bus_address=self.env["DBUS_SESSION_BUS_ADDRESS"]).connect()
                self._notifications = NotificationServer(self.recorded)
                notify_bus.export("/org/freedesktop/Notifications", self._notifications)
                await notify_bus.request_name("org.freedesktop.Notifications")
            except BaseException as error:  # reported to the starting thread
                failure.append(error)
            finally:
                ready.set()

        def run():
            self._loop = asyncio.new_event_loop()
            self._loop.create_task(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="test-dbus-services", daemon=True)
        self._thread.start()
        if not ready.wait(20):
            raise RuntimeError("the test D-Bus services did not start")
        if failure:
            raise failure[0]

    def click_notification(self, notification_id: int) -> None:
        """Act as if the user clicked the notification (its default action)."""
        assert self._loop is not None and self._notifications is not None
        self._loop.call_soon_threadsafe(self._notifications.ActionInvoked, notification_id, "default")

    def close(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(5)
        _stop(self.bus_daemon)
        _stop(self.xvfb)
        if self.bus_daemon is not None and self.bus_daemon.stdout:
            self.bus_daemon.stdout.close()
        shutil.rmtree(self._runtime, ignore_errors=True)
