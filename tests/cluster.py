"""Real services for scale-out tests: a private redis-server, real ``transcriber worker`` processes, moto's S3 server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "test-Pa55word"

# Workers run with Qt made unimportable: a processing machine installs transcriber[worker], no Qt.
_NO_QT = "import sys, runpy; sys.modules['PySide6'] = None; sys.argv[0] = 'transcriber'; runpy.run_module('transcriber', run_name='__main__')"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class RedisServer:
    """``redis-server`` on 127.0.0.1 at a free port, with a password; stopped by pid."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            import pytest

            pytest.skip("redis-server is not installed (apt install redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", PASSWORD, "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=open(self.folder / "redis.log", "ab"), stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, 10, "redis-server to answer")
        return self

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class SharedRedis:
    """The Redis that CI started (``TRANSCRIBER_TEST_REDIS_URL``), one emptied database of it per test."""

    base_url: str
    db: int

    @property
    def url(self) -> str:
        head, _, _ = self.base_url.rpartition("/")
        return f"{head}/{self.db}"

    def start(self) -> "SharedRedis":
        self.client().flushdb()
        return self

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

    def stop(self) -> None:
        self.client().flushdb()


def redis_for_test(folder: Path, index: int):
    """The CI's Redis where there is one (a database of its own per test), else a private ``redis-server``."""
    shared = os.environ.get("TRANSCRIBER_TEST_REDIS_URL")
    if shared:
        return SharedRedis(shared, 1 + index % 15).start()
    return RedisServer(folder).start()


@dataclass
class Worker:
    """A real ``transcriber worker`` process (its own process group, so SIGKILL takes all of it)."""

    name: str
    redis_url: str
    folder: Path
    queues: str = "large,small"
    model: str | None = "tiny.en"
    extra: tuple[str, ...] = ()
    env: dict | None = None
    process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-c", _NO_QT, "worker", "--redis", self.redis_url, "--queues", self.queues,
                   "--name", self.name, "--cache", str(self.folder / "cache"), *self.extra]
        if self.model:
            command += ["--model", self.model]
        env = {**os.environ, **(self.env or {})}
        self.process = subprocess.Popen(command, cwd=str(REPO), env=env, stdout=open(self.folder / "worker.log", "ab"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def log(self) -> str:
        return (self.folder / "worker.log").read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and anything it started."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def registered(redis_url: str) -> list[str]:
    """Names of the workers whose heartbeat is alive, as ``transcriber workers --json`` would list them."""
    from transcriber.scaleout.coordinator import connect, live_workers

    return [worker.name for worker in live_workers(connect(redis_url))]


def list_json(run_cli, data_dir: Path) -> list[dict]:
    return json.loads(run_cli("list", "--json", data_dir=data_dir, check=True).stdout)


@dataclass
class S3Server:
    """moto's S3 server on loopback (it ignores URL expiry: tests age the URLs with a clock instead)."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "S3Server":
        binary = shutil.which("moto_server")
        if binary is None:
            import pytest

            pytest.skip("moto[server] is not installed")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=open(self.folder / "moto.log", "ab"), stderr=subprocess.STDOUT)

        def answers():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_until(answers, 20, "moto_server to answer")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
