"""The engine: intake, limits, scheduling, model sharing and the transcription loop, in plain Python (no Qt).

Its listener is called on the thread that did the work (a decode thread, the dispatcher,
the caller of ``add``); docs/architecture.md says which threads there are and how results
reach the window.
"""
