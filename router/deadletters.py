"""Dead letters on disk: list, show, replay and purge, with or without a running daemon.

Works on the spool database directly (WAL lets a running daemon and this
tool share it). Replay moves rows back into the sink's queue table in
chunks; a running daemon notices them within a second (``Spool.watch``), a
stopped one on its next start.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from router.errors import UnknownSink
from router.queue import DeadLetter
from router.spool import connect
from router.spooldb import dead_letter_counts

__all__ = ["DeadLetters", "UnknownSink"]

REPLAY_CHUNK = 500


class DeadLetters:
    """The dead letters of one data directory's spool: a :class:`~router.queue.DeadLetterStore`."""

    def __init__(self, data_dir: Path | str):
        path = Path(data_dir) / "spool.db"
        if not path.exists():
            workers = sorted(p.parent.name for p in Path(data_dir).glob("worker-*/spool.db"))
            hint = (
                f"; with server.workers > 1 each worker has its own: --data-dir "
                f"{Path(data_dir) / workers[0]} ({', '.join(workers)})"
                if workers
                else ": has a daemon run with this data dir?"
            )
            raise FileNotFoundError(f"no spool at {path}{hint}")
        self.db: sqlite3.Connection = connect(path)

    def __enter__(self) -> DeadLetters:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.db.close()

    def sinks(self) -> dict[str, int]:
        """Sink name -> number of dead letters."""
        return dead_letter_counts(self.db)

    def _sink_id(self, sink: str) -> int:
        row = self.db.execute("SELECT id FROM sinks WHERE name = ?", (sink,)).fetchone()
        if row is None:
            known = ", ".join(self.sinks()) or "none"
            raise UnknownSink(f"no sink named {sink!r} in this spool (sinks: {known})")
        return row[0]

    def count(self, sink: str) -> int:
        return self.db.execute(
            "SELECT count(*) FROM dead_letters WHERE sink = ?", (self._sink_id(sink),)
        ).fetchone()[0]

    def list(self, sink: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        rows = self.db.execute(
            "SELECT id, event_id, payload, reason, attempts, status, response, enqueued_at, "
            "dead_at FROM dead_letters WHERE sink = ? ORDER BY id LIMIT ? OFFSET ?",
            (self._sink_id(sink), limit, offset),
        ).fetchall()
        return [DeadLetter(row[0], sink, *row[1:]) for row in rows]

    def get(self, sink: str, letter_id: int) -> DeadLetter | None:
        row = self.db.execute(
            "SELECT id, event_id, payload, reason, attempts, status, response, enqueued_at, "
            "dead_at FROM dead_letters WHERE sink = ? AND id = ?",
            (self._sink_id(sink), letter_id),
        ).fetchone()
        return DeadLetter(row[0], sink, *row[1:]) if row else None

    def replay(
        self,
        sink: str,
        ids: Sequence[int] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Move dead letters (all, or ``ids``) back into the sink's queue; returns how many."""
        sink_id = self._sink_id(sink)
        wanted = self._selected(sink_id, ids)
        done = 0
        for start in range(0, len(wanted), REPLAY_CHUNK):
            chunk = wanted[start : start + REPLAY_CHUNK]
            marks = ",".join("?" * len(chunk))
            self.db.execute("BEGIN IMMEDIATE")
            try:
                # One queue row (a chunk of one event) per dead letter.
                self.db.execute(
                    f"INSERT INTO q_{sink_id} (count, event_ids, payloads, enqueued_at) "
                    f"SELECT 1, json_array(event_id), payload, enqueued_at FROM dead_letters "
                    f"WHERE id IN ({marks}) ORDER BY id",
                    chunk,
                )
                self.db.execute(f"DELETE FROM dead_letters WHERE id IN ({marks})", chunk)
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                    self.db.execute("ROLLBACK")
                raise
            done += len(chunk)
            if progress is not None:
                progress(done, len(wanted))
        return done

    def purge(self, sink: str, ids: Sequence[int] | None = None) -> int:
        """Delete dead letters (all, or ``ids``); returns how many."""
        sink_id = self._sink_id(sink)
        wanted = self._selected(sink_id, ids)
        for start in range(0, len(wanted), REPLAY_CHUNK):
            chunk = wanted[start : start + REPLAY_CHUNK]
            self.db.execute(
                f"DELETE FROM dead_letters WHERE id IN ({','.join('?' * len(chunk))})", chunk
            )
        return len(wanted)

    def _selected(self, sink_id: int, ids: Sequence[int] | None) -> list[int]:
        rows = self.db.execute(
            "SELECT id FROM dead_letters WHERE sink = ? ORDER BY id", (sink_id,)
        ).fetchall()
        present = [row[0] for row in rows]
        if ids is None:
            return present
        wanted = set(ids)
        return [i for i in present if i in wanted]
