"""Signals emitted from Python must not eat references to True (PySide6 6.12.0's emit() does: see engine/qt.py).

Without the balance in ``emit_signal`` a long session aborts with "bool_dealloc:
deallocating True or False" after a few thousand signals (an idle engine emits one a second).
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

from transcriber.engine.qt import EngineRunner, emit_signal


class _Sender(QObject):
    changed = Signal(object)


def test_emit_signal_keeps_the_reference_count_of_true(qapp):
    sender = _Sender()
    received = []
    sender.changed.connect(received.append)
    before = sys.getrefcount(True)
    for number in range(5000):
        emit_signal(sender.changed, number)
    assert len(received) == 5000
    assert abs(sys.getrefcount(True) - before) < 100


def test_an_idle_runner_does_not_drain_true(qapp, make_engine, model_cache):
    from fakes import fake_factory, fake_pool

    engine = make_engine(models=fake_pool(model_cache), backend_factory=fake_factory())
    runner = EngineRunner(engine, poll_ms=10_000)
    idles = []
    runner.idle.connect(lambda: idles.append(1))
    before = sys.getrefcount(True)
    for _ in range(600):
        runner.dispatch()
    assert len(idles) == 600
    assert abs(sys.getrefcount(True) - before) < 100
    runner.stop(1000)
