"""One window per data folder: the first launch listens on a local socket, later launches hand it their files.

The socket's name derives from the data folder (and the user), so two data folders get
two windows and a test's temporary folder never meets the user's real window.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket


log = logging.getLogger(__name__)

_TIMEOUT_MS = 3000


def server_name(data_dir: Path) -> str:
    """A short name for the data folder, unique per user (Unix socket paths are short)."""
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "")
    digest = hashlib.sha256(f"{user}:{Path(data_dir).resolve()}".encode()).hexdigest()[:16]
    return f"transcriber-{digest}"


def hand_over(name: str, files: Sequence[str]) -> bool:
    """Give ``files`` to the window already serving ``name`` and ask it to come to the front.

    Returns:
        True if a window took them; False if none is listening.
    """
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(_TIMEOUT_MS // 3):
        return False
    message = json.dumps({"files": [str(Path(f).absolute()) for f in files]}) + "\n"
    socket.write(message.encode())
    socket.waitForBytesWritten(_TIMEOUT_MS)
    answered = socket.waitForReadyRead(_TIMEOUT_MS) and bytes(socket.readAll().data()).strip() == b"ok"
    socket.disconnectFromServer()
    return answered


class InstanceServer(QObject):
    """Listens for later launches; emits ``files_received`` (possibly empty: just show the window)."""

    files_received = Signal(list)

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_connection)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self) -> bool:
        """Start listening, unless a window already answers on this name (it was slow to take a hand-over).

        A socket file left by a window that crashed is replaced.
        """
        probe = QLocalSocket()
        probe.connectToServer(self.name)
        if probe.waitForConnected(_TIMEOUT_MS // 3):
            probe.disconnectFromServer()
            log.warning("another window already serves %s", self.name)
            return False
        if self._server.listen(self.name):
            return True
        QLocalServer.removeServer(self.name)
        listening = self._server.listen(self.name)
        if not listening:
            log.warning("single-instance server %s: %s", self.name, self._server.errorString())
        return listening

    def close(self) -> None:
        self._server.close()

    @Slot()
    def _on_connection(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._on_ready(s))
            socket.disconnected.connect(lambda s=socket: self._forget(s))

    def _on_ready(self, socket: QLocalSocket) -> None:
        self._buffers[socket] = self._buffers.get(socket, b"") + bytes(socket.readAll().data())
        if b"\n" not in self._buffers[socket]:
            return
        line = self._buffers[socket].split(b"\n", 1)[0]
        try:
            files = [str(item) for item in json.loads(line.decode()).get("files", [])]
        except (ValueError, AttributeError):
            log.warning("ignored a malformed message from another launch")
            files = None
        socket.write(b"ok\n" if files is not None else b"error\n")
        socket.flush()
        if files is not None:
            self.files_received.emit(files)

    def _forget(self, socket: QLocalSocket) -> None:
        if self._buffers.pop(socket, None) is not None:
            socket.deleteLater()
