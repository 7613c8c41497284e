"""Background services of a served data folder: webhook deliveries and watch folders.

Each is a ``background.BackgroundService`` (a thread of its own that the app starts and
stops with the engine's runner) with an ``is_idle`` that ``run --until-idle`` waits for.
Plain Python: no Qt.
"""
