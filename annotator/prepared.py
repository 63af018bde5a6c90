"""Server-side prepared statements for the hottest hand-written SQL (the autosave's two statements).

PostgreSQL plans a statement every time it is sent; the save's lock and write statements cost
more to plan than to run (about 0.5 ms of planning for 0.4 ms of work, BENCHMARKS.md section 1).
A prepared statement is planned once per database connection and then only executed.

    WRITE = Prepared("busreview_write", "UPDATE t SET a = %(a)s WHERE id = %(id)s")
    with connection.cursor() as cursor:
        WRITE.execute(cursor, {"a": 1, "id": 2})

The statement is written with psycopg2's named placeholders, as everywhere else; ``Prepared``
numbers them for PREPARE and passes the values to EXECUTE, where psycopg2 quotes them as usual.
Each connection is prepared at its first use (PREPARE outlives a rolled-back transaction, and a
new connection after a reconnect is prepared afresh). A connection pooler in transaction mode
(PgBouncer before 1.21) would hand statements to other server connections: run the app against
PostgreSQL directly or in session mode, as the compose file does.
"""

from __future__ import annotations

import re
import weakref

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class Prepared:
    def __init__(self, name: str, sql: str) -> None:
        names: list[str] = []

        def number(match: re.Match) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.name = name
        self.sql = sql
        self.prepare_sql = f"PREPARE {name} AS {_PLACEHOLDER.sub(number, sql)}"
        self.execute_sql = f"EXECUTE {name}({', '.join(f'%({n})s' for n in names)})" if names else f"EXECUTE {name}"
        self.params = tuple(names)
        # The driver's connections this statement is prepared on (a closed one drops out).
        self._prepared_on: weakref.WeakSet = weakref.WeakSet()

    def execute(self, cursor, params: dict) -> None:
        """Run the statement on ``cursor`` (a Django cursor) with ``params``, preparing it first
        if this connection has not seen it."""
        raw = cursor.db.connection
        if raw not in self._prepared_on:
            cursor.execute(self.prepare_sql)
            self._prepared_on.add(raw)
        cursor.execute(self.execute_sql, {name: params[name] for name in self.params})
