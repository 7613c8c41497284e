"""The engine: intake, limits, scheduling, model sharing and the transcription loop.

Everything here runs without widgets; ``engine.qt`` is the one module that uses Qt (QtCore).
"""
