"""What the SQL job semantics need of a database driver: run a write transaction, read
rows. Statements use ``?`` placeholders; a transport may rewrite them for its driver."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from .contract import Row

T = TypeVar("T")


class Cursor(Protocol):
    """The result of one statement."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Tx(Protocol):
    """What a transaction body sees: ``execute`` and ``executemany`` with ``?`` marks."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...


class Transport(Protocol):
    """A database's connections, as the SQL store uses them."""

    def run(self, body: Callable[[Tx], T], *, patient: bool = False) -> T:
        """Run ``body`` in one write transaction (retried by the transport on lock
        conflicts, so it must not have effects outside the database). ``patient``: the
        caller holds nothing yet (a claim) and may wait longer for a lock."""
        ...

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one read statement, as dicts."""
        ...

    def read_tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read statement, as tuples in the order of its columns (no
        dict a row: for reads of a whole large run)."""
        ...

    def stream_tuples(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """``read_tuples`` for a reader that uses each row once: an embedded database
        reads them a batch at a time rather than hold them all."""
        ...

    def close(self) -> None:
        """Release what this thread holds."""
        ...
