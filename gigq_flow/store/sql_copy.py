"""Copying a whole queue between stores (``gigq-flow migrate``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .contract import Row
from .sql_base import SQLBase
from .statements import chunks, marks
from .transport import Tx

#: What a copy of a queue carries, table by table (parents before children), and in
#: which order rows are read, so a copy keeps the source's insertion order.
COPIED_COLUMNS = {
    "workflows": ("id", "name", "created_at"),
    "jobs": ("id", "name", "function_name", "function_module", "params", "priority",
             "dependencies", "max_attempts", "timeout", "description", "status", "created_at",
             "updated_at", "attempts", "result", "error", "started_at", "completed_at",
             "worker_id", "pass_parent_results", "retry_delay", "retry_after", "workflow_id",
             "pending_deps", "execution_id", "serializer", "cache", "cache_version",
             "result_digest", "cache_note", "cached_from", "traceback", "code_digest",
             "map_param", "map_size", "map_of", "map_index", "map_limit", "tags", "gate"),
    "job_dependencies": ("job_id", "depends_on", "position"),
    "ended_attempts": ("id", "job_id", "worker_id", "status", "started_at", "completed_at",
                       "result", "error", "traceback"),
    "workers": ("instance", "id", "host", "pid", "concurrency", "lease_timeout", "started_at",
                "last_heartbeat", "stopped_at", "reclaimed_at"),
    "result_blobs": ("digest", "serializer", "data", "size", "created_at"),
    "attempt_output": ("job_id", "attempt_id", "seq", "text"),
    "step_code": ("digest", "data", "size", "created_at"),
    "tag_limits": ("tag", "max_running"),
    "cache_entries": ("key", "step", "name", "code_digest", "params_digest", "parents_digest",
                      "settings", "result_digest", "serializer", "result", "job_id",
                      "workflow_id",
                      "created_at", "used_at"),
}
COPY_ORDER = {
    "workflows": "created_at, id", "jobs": "created_at, {order}",
    "job_dependencies": "job_id, position", "ended_attempts": "started_at, {execution_order}",
    "workers": "started_at, instance", "result_blobs": "created_at, digest",
    "cache_entries": "created_at, key", "attempt_output": "job_id, attempt_id, seq",
    "step_code": "created_at, digest", "tag_limits": "tag",
}
PAYLOADS = {"jobs": ("params", "result"), "ended_attempts": ("result",),
            "result_blobs": ("data",), "cache_entries": ("result",), "step_code": ("data",)}
BINARY_TABLES = frozenset({"step_code"})
"""Tables whose payloads are always bytes (pickled code), whatever a job's serializer."""
#: What it takes to submit a workflow's jobs again (``NewJob``'s fields).
DEFINITION_COLUMNS = ("id", "name", "function_module", "function_name", "params", "priority",
                      "max_attempts", "timeout", "description", "pass_parent_results",
                      "retry_delay", "serializer", "cache", "cache_version", "created_at",
                      "code_digest", "map_param", "map_limit", "tags")


def portable_payload(value: Any, serializer: str | None) -> str | bytes | None:
    """A stored payload as the Store boundary carries it: ``str`` for JSON, ``bytes`` for
    pickle, whatever type the backend keeps it in."""
    if value is None:
        return None
    if serializer == "pickle":
        return value.encode() if isinstance(value, str) else bytes(value)
    return value if isinstance(value, str) else bytes(value).decode()


class SQLCopy(SQLBase):
    """Export and import every row of a queue, in one transaction each."""

    def count_rows(self) -> dict[str, int]:
        return {table: self.db.read(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
                for table in COPIED_COLUMNS}

    def export_rows(self) -> dict[str, list[Row]]:
        def body(tx: Tx) -> dict[str, list[Row]]:
            self.begin_snapshot(tx)
            serializers = dict(tx.execute("SELECT id, serializer FROM jobs").fetchall())
            exported = {}
            for table, columns in COPIED_COLUMNS.items():
                order = COPY_ORDER[table].format(order=self.insertion_order,
                                                 execution_order=self.execution_order)
                cursor = tx.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
                rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
                for row in rows:
                    serializer = ("pickle" if table in BINARY_TABLES else
                                  row.get("serializer") or serializers.get(row.get("job_id")))
                    for column in PAYLOADS.get(table, ()):
                        row[column] = portable_payload(row[column], serializer)
                exported[table] = rows
            return exported

        return self.db.run(body)

    def workflow_definitions(self, workflow_id: str) -> list[Row]:
        def body(tx: Tx) -> list[Row]:
            self.begin_snapshot(tx)
            cursor = tx.execute(
                f"""SELECT {', '.join(DEFINITION_COLUMNS)} FROM jobs WHERE workflow_id = ?
                    AND map_of IS NULL ORDER BY created_at, {self.insertion_order}""",
                (workflow_id,),
            )
            jobs = [dict(zip(DEFINITION_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
            parents: dict[str, list[str]] = {}
            for job_id, parent in tx.execute(
                """SELECT d.job_id, d.depends_on FROM job_dependencies d
                   JOIN jobs j ON j.id = d.job_id LEFT JOIN jobs p ON p.id = d.depends_on
                   WHERE j.workflow_id = ? AND j.map_of IS NULL AND p.map_of IS NULL
                   ORDER BY d.job_id, d.position""",
                (workflow_id,),
            ).fetchall():
                parents.setdefault(job_id, []).append(parent)
            for job in jobs:
                job["params"] = portable_payload(job["params"], job["serializer"])
                job["dependencies"] = parents.get(job["id"], [])
            return jobs

        return self.db.run(body)

    def import_rows(self, rows: Mapping[str, Sequence[Row]], *, replace: bool = False) -> None:
        def body(tx: Tx) -> None:
            if replace:
                for table in reversed(COPIED_COLUMNS):
                    tx.execute(f"DELETE FROM {table}")
            for table, columns in COPIED_COLUMNS.items():
                payloads = PAYLOADS.get(table, ())
                values = [
                    tuple(self.blob(row.get(c)) if c in payloads else row.get(c) for c in columns)
                    for row in rows.get(table, ())
                ]
                for chunk in chunks(values):
                    tx.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(columns)})",
                        chunk,
                    )
            self.announce(tx)

        self.db.run(body)
        self.wake.bump()
