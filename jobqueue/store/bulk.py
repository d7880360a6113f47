"""Many plain job rows in one go, each database its fastest way: the batch enqueue's writer.

A batch of plain jobs (rows with exactly :data:`ENQUEUE_COLUMNS`) is where per-row Python shows:
SQLAlchemy's executemany builds and processes a parameter dictionary per row, which measured
about as much as SQLite's own work for the row. So these rows skip it:

- PostgreSQL gets one ``INSERT ... SELECT ... FROM json_to_recordset(:rows)``: the whole
  batch as one JSON document (made by the json module's C encoder), one statement and one round
  trip. An ``unnest`` of one array per column was tried first: psycopg quotes every element of a
  text-format array with a regular expression, which cost more than SQLAlchemy's executemany.
- SQLite and MySQL/MariaDB get the same INSERT their executemany would send, compiled once per
  dialect, with each row's values as a plain tuple (only the timestamps are converted, by the
  column type's own bind processor; the batch shares one ``now``, which the processor caches).
  PyMySQL turns it into multi-row INSERTs itself.

Rows with other columns (batches, dependencies, flow control) keep SQLAlchemy's executemany.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Text, bindparam, column, func, insert, select
from sqlalchemy.dialects import postgresql

from jobqueue.schema import UTCDateTime, job_queue

#: The columns an enqueue writes (the rest start NULL).
ENQUEUE_COLUMNS = (
    "id",
    "name",
    "args",
    "queue",
    "priority",
    "status",
    "scheduled_for",
    "attempts",
    "failed_attempts",
    "max_attempts",
    "created_at",
    "concurrency_key",
    "unique_key",
    "trace_context",
)

_PLAIN = frozenset(ENQUEUE_COLUMNS)


def is_plain(columns: Collection[str]) -> bool:
    """Whether rows with these columns can go through :func:`insert_plain`."""
    return frozenset(columns) == _PLAIN


def insert_plain(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert plain job rows (each with exactly :data:`ENQUEUE_COLUMNS`) in one statement or
    one driver executemany."""
    if connection.dialect.name == "postgresql":
        connection.execute(_JSON_INSERT, {"rows": _as_json(rows, connection.dialect)})
        return
    execute_plain(connection, PLAIN_INSERT, rows)


def execute_plain(
    connection: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run ``statement`` (bound by :data:`ENQUEUE_COLUMNS` only) for plain job rows as driver
    SQL: compiled once per dialect, each row's values converted by the columns' own bind
    processors and nothing else (one row: one execute; more: one executemany)."""
    sql, converters, positional, constants = _driver_form(connection, statement)
    if constants:  # the statement's own values (the NOTIFY channel of a single enqueue)
        rows = [{**constants, **row} for row in rows]
    if positional:
        params: list[Any] = [
            tuple(row[c] if convert is None else convert(row[c]) for c, convert in converters)
            for row in rows
        ]
    else:
        params = [
            {c: row[c] if convert is None else convert(row[c]) for c, convert in converters}
            for row in rows
        ]
    connection.exec_driver_sql(sql, params[0] if len(params) == 1 else params)


#: The INSERT of one plain job row (the batch's driver executemany and the single enqueue's).
PLAIN_INSERT = insert(job_queue).values(
    {column: bindparam(column, type_=job_queue.c[column].type) for column in ENQUEUE_COLUMNS}
)
_RECORDS = (
    func.json_to_recordset(bindparam("rows", type_=Text).cast(postgresql.JSON))
    .table_valued(*(column(name, job_queue.c[name].type) for name in ENQUEUE_COLUMNS))
    .render_derived(with_types=True)
)
_JSON_INSERT = insert(job_queue).from_select(
    list(ENQUEUE_COLUMNS), select(*(_RECORDS.c[name] for name in ENQUEUE_COLUMNS))
)
_TIMES = ("scheduled_for", "created_at")


def _as_json(rows: Sequence[Mapping[str, Any]], dialect: Dialect) -> str:
    """The rows as one JSON array of objects, timestamps as naive UTC ISO text (converted by
    :class:`~jobqueue.schema.UTCDateTime`'s own check, once per distinct object: a batch
    shares one ``now``)."""
    texts: dict[int, str] = {}
    records = []
    for row in rows:
        record = dict(row)
        for name in _TIMES:
            value = row[name]
            text = texts.get(id(value))
            if text is None:
                text = texts[id(value)] = _utc_text(value, dialect)
            record[name] = text
        records.append(record)
    return _ENCODER.encode(records)


def _utc_text(value: datetime, dialect: Dialect) -> str:
    naive = _UTC.process_bind_param(value, dialect)  # refuses a naive datetime, as always
    assert naive is not None
    return naive.isoformat()


_UTC = UTCDateTime()
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

_Converter = Callable[[Any], Any] | None
_Driver = tuple[str, list[tuple[str, _Converter]], bool, dict[str, Any]]
#: By dialect and statement (the statements are module-level constants, never freed).
_compiled: dict[tuple[str, int], _Driver] = {}


def _driver_form(connection: Connection, statement: Any) -> _Driver:
    """``statement`` as driver SQL for this dialect: its text, the columns in the order of its
    placeholders with each one's bind processor (None: passed as it is), whether the
    placeholders are positional (SQLite's ``?``) or named (PyMySQL's and psycopg's), and the
    values the statement binds itself (not a column's)."""
    dialect = connection.dialect
    key = (dialect.name, id(statement))
    known = _compiled.get(key)
    if known is None:
        compiled = statement.compile(dialect=dialect)
        constants = {
            name: bind.value for name, bind in compiled.binds.items() if name not in _PLAIN
        }
        order = compiled.positiontup if compiled.positional else None
        names = order or [*ENQUEUE_COLUMNS, *constants]
        converters = [
            (name, _processor(dialect, name) if name in _PLAIN else None) for name in names
        ]
        known = (str(compiled), converters, order is not None, constants)
        _compiled[key] = known
    return known


def _processor(dialect: Any, name: str) -> _Converter:
    """The column type's bind processor on this dialect (variants resolved), or None (also
    for the statement's own values, which are plain text)."""
    if name not in _PLAIN:
        return None
    processor: _Converter = job_queue.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    return processor
