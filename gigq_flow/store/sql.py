"""The SQL store: the job semantics, written once in SQL that SQLite and PostgreSQL both run.

A backend subclasses :class:`SQLStore` and supplies a transport (``run`` a write
transaction, ``read`` rows), its claim and its wake-ups (the hooks of
:class:`~.sql_base.SQLBase`). Every state change is one transaction.
"""

from __future__ import annotations

from .sql_attempts import SQLAttempts
from .sql_cache import SQLCache
from .sql_copy import SQLCopy
from .sql_jobs import SQLJobs
from .sql_limits import SQLLimits
from .sql_reads import SQLReads


class SQLStore(SQLJobs, SQLAttempts, SQLCache, SQLLimits, SQLReads, SQLCopy):
    """The Store contract over a SQL transport; see :class:`~gigq_flow.store.contract.Store`."""

    def wake_all(self) -> None:
        self.wake.bump()

    def close(self) -> None:
        self.db.close()
