"""Full-text search over every transcript: the SQL behind ``transcriber search`` and the window's library search.

The index is the FTS5 table ``segment_fts`` (migration 5, `_v5_search`), kept in step with the
``segment`` table by triggers, so every writer (committed segments, edits, removed jobs)
updates it without knowing it exists. Queries use FTS5's syntax: words (all must occur),
``"a phrase"``, ``prefix*``, ``AND``/``OR``/``NOT`` and parentheses; matching ignores case
and accents. A query FTS5 cannot parse is searched again as its plain words, with a note
saying so.

Speaker names are not in the index: a hit's speaker, and the ``speaker`` filter, come from a
join with the ``speaker`` table, so a rename or a merge shows at once without touching the index.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from dataclasses import dataclass, field

from ..errors import SearchQueryError
from .db import StorePart, translating

DEFAULT_LIMIT = 50
SNIPPET_TOKENS = 12  # words of context around the match in a snippet

# How FTS5 words a query it cannot parse (for Pythons before 3.11, whose errors carry no SQLite code).
_QUERY_ERRORS = ("fts5:", "unterminated string", "no such column")

_WORD = re.compile(r"\w+", re.UNICODE)
_OPERATORS = {"AND", "OR", "NOT", "NEAR"}
_AND_NOT = re.compile(r"\bAND\s+NOT\b")


@dataclass(frozen=True)
class SearchHit:
    """One segment that matches a query.

    ``snippet`` is the segment's text around the match, each matching word between the
    two marks the caller asked for; ``rank`` is FTS5's bm25 score (lower is more relevant).
    """

    job_id: int
    path: str
    segment_index: int
    start: float
    end: float
    text: str
    snippet: str
    rank: float
    user: str
    created_at: float
    speaker: str | None = None  # the name of who said it, when the job's speakers were found

    @property
    def file_name(self) -> str:
        return os.path.basename(self.path)


@dataclass(frozen=True)
class SearchResults:
    """The hits of one query, best first; ``note`` says when the query was read differently than written."""

    query: str
    hits: list[SearchHit] = field(default_factory=list)
    more: bool = False  # there are hits beyond the limit
    note: str | None = None


def is_query_error(error: sqlite3.Error) -> bool:
    """Whether ``error`` is FTS5 refusing the query's syntax (SQLITE_ERROR), not a failing database (busy, full...)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None and code != 1:  # 1 is SQLITE_ERROR; busy, locked, full, corrupt have codes of their own
        return False
    return str(error).lower().startswith(_QUERY_ERRORS)


def fts_query(query: str) -> str:
    """The query as FTS5 reads it: ``a AND NOT b``, as people write it, becomes FTS5's ``a NOT b`` (outside quotes)."""
    pieces = query.split('"')
    return '"'.join(_AND_NOT.sub("NOT", piece) if number % 2 == 0 else piece for number, piece in enumerate(pieces))


def query_words(query: str) -> list[str]:
    """The words of a query, without its operators."""
    return [word for word in _WORD.findall(query) if word not in _OPERATORS]


def plain_words(query: str) -> str | None:
    """The query as its words only, each quoted (all must occur), or None when it has no word at all."""
    words = query_words(query)
    return " ".join(f'"{word}"' for word in words) if words else None


class SearchPart(StorePart):
    """The full-text index of segments."""

    @translating
    def search(
        self,
        query: str,
        *,
        user: str | None = None,
        model: str | None = None,
        since: float | None = None,
        limit: int = DEFAULT_LIMIT,
        marks: tuple[str, str] = ("[", "]"),
        speaker: str | None = None,
    ) -> SearchResults:
        """Segments matching ``query``, by relevance, then newest job first, then time in the recording.

        Args:
            query: FTS5 syntax; one it cannot parse is searched as its plain words.
            user: only this user's jobs (None: everyone's).
            model: only jobs decoded by this model.
            since: only jobs added at or after this POSIX time.
            limit: at most this many hits.
            marks: what goes before and after each matching word in snippets.
            speaker: only what the speaker of this name said (names are compared without case).

        Raises:
            SearchQueryError: the query has no word to search for.
        """
        if not query.strip():
            raise SearchQueryError("Nothing to search for: give a word, a \"phrase\" or a prefix*.")
        try:
            hits = self._run(fts_query(query), user, model, since, speaker, limit + 1, marks)
            note = None
        except sqlite3.OperationalError as error:
            if not is_query_error(error):
                raise
            fallback = plain_words(query)
            if fallback is None:
                raise SearchQueryError(
                    f"Nothing to search for in {query!r}: give a word, a \"phrase\" or a prefix*."
                ) from None
            hits = self._run(fallback, user, model, since, speaker, limit + 1, marks)
            note = (f"The query {query!r} is not valid search syntax; "
                    f"searched for the words {' '.join(query_words(query))} instead.")
        return SearchResults(query=query, hits=hits[:limit], more=len(hits) > limit, note=note)

    def _run(self, match: str, user, model, since, speaker, limit: int, marks: tuple[str, str]) -> list[SearchHit]:
        conditions, parameters = ["segment_fts MATCH ?"], [match]
        if user is not None:
            conditions.append("u.name = ?")
            parameters.append(user)
        if model is not None:
            conditions.append("j.model = ?")
            parameters.append(model)
        if since is not None:
            conditions.append("j.created_at >= ?")
            parameters.append(since)
        if speaker is not None:
            conditions.append("sp.name = ? COLLATE NOCASE")
            parameters.append(speaker)
        # Two steps: rank every match and keep the best ``limit``, then make snippets for those
        # alone (a snippet costs more than ranking, and a frequent word matches thousands). The
        # snippets come from one pass over the matches in the hits' rowid range: a lookup per
        # hit would parse the query again each time.
        sql = f"""
            SELECT s.id, s.job_id, j.source_path, s.idx, s.start_seconds, s.end_seconds, s.text,
                   segment_fts.rank, u.name, j.created_at, sp.name
            FROM segment_fts
            JOIN segment s ON s.id = segment_fts.rowid
            JOIN job j ON j.id = s.job_id
            JOIN user u ON u.id = j.user_id
            LEFT JOIN speaker sp ON sp.job_id = s.job_id AND sp.label = s.speaker
            WHERE {' AND '.join(conditions)}
            ORDER BY segment_fts.rank, j.created_at DESC, s.start_seconds, s.idx
            LIMIT ?"""
        # The sqlite3 connection itself: its errors keep their SQLite code (peewee's wrapping drops it).
        connection = self.db.connection()
        rows = connection.execute(sql, [*parameters, limit]).fetchall()
        if not rows:
            return []
        ids = [row[0] for row in rows]
        snippets = dict(
            connection.execute(
                f"""SELECT rowid, snippet(segment_fts, 0, ?, ?, '…', {SNIPPET_TOKENS}) FROM segment_fts
                    WHERE segment_fts MATCH ? AND rowid BETWEEN ? AND ? AND +rowid IN (SELECT value FROM json_each(?))""",
                [marks[0], marks[1], match, min(ids), max(ids), json.dumps(ids)],
            ).fetchall()
        )
        return [
            SearchHit(
                job_id=job_id,
                path=os.fsdecode(bytes(path)) if isinstance(path, (bytes, memoryview)) else path,
                segment_index=index,
                start=start,
                end=end,
                text=text,
                snippet=snippets.get(segment_id, text),
                rank=rank,
                user=name,
                created_at=created_at,
                speaker=speaker_name,
            )
            for segment_id, job_id, path, index, start, end, text, rank, name, created_at, speaker_name in rows
        ]

    @translating
    def indexed_segments(self) -> int:
        """How many segments the index holds (for checks and the benchmark)."""
        return self.db.execute_sql("SELECT COUNT(*) FROM segment_fts_docsize").fetchone()[0]

    @translating
    def check(self) -> None:
        """Verify that the index matches the segments' text.

        Raises:
            StoreError: it does not (FTS5's integrity check failed).
        """
        self.db.execute_sql("INSERT INTO segment_fts(segment_fts, rank) VALUES ('integrity-check', 1)")
