"""Persistence: the SQLite store of users, jobs, segments, runs and settings."""

from .jobstore import JobStore

__all__ = ["JobStore"]
