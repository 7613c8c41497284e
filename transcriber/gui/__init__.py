"""The desktop window and tray: a client of the engine that adds, controls and shows jobs.

Nothing here transcribes or writes SQL: work runs on the engine's thread pool, blocking
engine calls run on ``tasks.TaskRunner``, and results come back to the GUI thread as
queued signals. ``gui.app`` is the composition root.
"""
