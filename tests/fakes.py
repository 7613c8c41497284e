"""Test doubles for logic tests: a decoder that needs no model. End-to-end tests use the real one."""

from __future__ import annotations

import threading
import time

from transcriber.engine.whisper import DecodedSegment, DecodeRequest


class FakeDecoding:
    def __init__(self, request: DecodeRequest, on_window, step: float, delay: float, gate: threading.Semaphore | None):
        self.request = request
        self.language = request.language or "en"
        self.missing_seconds = 0.0
        self.damaged_packets = 0
        self._on_window = on_window
        self._step = step
        self._delay = delay
        self._gate = gate

    def __iter__(self):
        position = self.request.start_seconds
        duration = self.request.end_seconds or self.request.duration_seconds
        while position < duration - 1e-6:
            if self._on_window:
                self._on_window(position)
            if self._gate is not None:
                self._gate.acquire()
            if self._delay:
                time.sleep(self._delay)
            end = min(duration, position + self._step)
            yield DecodedSegment(
                start=position, end=end, text=f" words from {position:.0f} to {end:.0f}", tokens=(int(position), int(end))
            )
            position = end


class FakeBackend:
    """Emits one segment per ``step`` seconds of audio and calls ``on_window`` before each, like the real decoder.

    With a ``gate`` (a semaphore), each segment waits for a release, so a test can hold a
    job mid-way deterministically.
    """

    instances: list["FakeBackend"] = []

    def __init__(self, model=None, *, step: float = 5.0, delay: float = 0.0, gate: threading.Semaphore | None = None):
        self.model = model
        self.step = step
        self.delay = delay
        self.gate = gate
        self.requests: list[DecodeRequest] = []
        self.is_multilingual = False

    def detect_language(self, path, duration_seconds, start_seconds=0.0) -> str:
        return "en"

    def decode(self, request: DecodeRequest, on_window=None) -> FakeDecoding:
        self.requests.append(request)
        return FakeDecoding(request, on_window, self.step, self.delay, self.gate)


def fake_factory(**kwargs):
    """A backend_factory for Engine that records the backends it made in ``factory.made``."""
    made: list[FakeBackend] = []

    def factory(model):
        backend = FakeBackend(model, **kwargs)
        made.append(backend)
        return backend

    factory.made = made
    return factory


def fake_pool(cache_dir):
    """A ModelPool whose 'loading' takes no time and no memory."""
    from transcriber.engine.models import ModelPool

    return ModelPool(cache_dir, workers=1, idle_seconds=0, loader=lambda settings: object())
