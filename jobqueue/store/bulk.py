"""Many plain job rows in one go, each database its fastest way: the batch enqueue's writer.

A batch of plain jobs (rows with exactly :data:`ENQUEUE_COLUMNS`) is where per-row Python shows:
SQLAlchemy's executemany builds and processes a parameter dictionary per row, which measured
about as much as SQLite's own work for the row. So these rows skip it. They come as tuples of
their values in the order of :data:`ENQUEUE_COLUMNS` (:mod:`jobqueue.job_rows` builds them
from the calls; a row dictionary becomes one with :data:`row_values`), and:

- PostgreSQL gets ``COPY ... FROM STDIN`` in the binary format: psycopg formats each row in C
  and the server parses no statement per row, nor text into integers and timestamps (the
  binary format cut the client's CPU from 18.7 to 14.9 us a row against the text one, in
  alternating rounds; rows/s stayed within noise, bound by the server's work). One
  ``INSERT ... SELECT ... FROM json_to_recordset(:rows)`` came first and took 31 % longer per
  batch (the JSON document had to be built too); an ``unnest`` of one array per column before
  it cost more still (psycopg quotes every element of a text array with a regular
  expression). Where something hooks the connection's statements (tracing, a test's faults),
  the driver executemany below instead: a COPY would go around the hooks.
- SQLite and MySQL/MariaDB get the same INSERT their executemany would send, compiled once per
  dialect, with each row's values as a plain tuple (only the timestamps are converted, by the
  column type's own bind processor; the batch shares one ``now``, which the processor caches).
  PyMySQL turns it into multi-row INSERTs itself.

Rows with other columns (batches, dependencies, flow control) keep SQLAlchemy's executemany.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Integer, String, bindparam, insert

from jobqueue.driver import as_sqlalchemy_error, has_statement_hooks
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


#: A plain row as a tuple of its values in the order of :data:`ENQUEUE_COLUMNS` (one C call).
row_values: Callable[[Mapping[str, Any]], tuple[Any, ...]] = itemgetter(*ENQUEUE_COLUMNS)
#: Where the queue and the two timestamps sit in such a tuple.
QUEUE, SCHEDULED_FOR, CREATED_AT = (
    ENQUEUE_COLUMNS.index(name) for name in ("queue", "scheduled_for", "created_at")
)


def insert_plain(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert plain job rows (each with exactly :data:`ENQUEUE_COLUMNS`): see
    :func:`insert_values`."""
    insert_values(connection, [row_values(row) for row in rows])


def insert_values(connection: Connection, values: Sequence[tuple[Any, ...]]) -> None:
    """Insert plain jobs given as :data:`ENQUEUE_COLUMNS`-ordered tuples (timestamps aware) in
    one COPY (PostgreSQL) or one driver executemany."""
    if connection.dialect.name == "postgresql" and not has_statement_hooks(connection):
        copy_values(connection, values)
        return
    execute_plain(connection, PLAIN_INSERT, values)


def copy_values(connection: Connection, values: Sequence[tuple[Any, ...]]) -> None:
    """PostgreSQL: the rows through ``COPY ... FROM STDIN`` on the connection's own driver
    connection, in its transaction (a driver error comes out as SQLAlchemy's, as from
    ``execute``). Only where no one hooks the connection's statements: a COPY goes around
    them."""
    pooled = connection.connection
    driver = pooled.driver_connection
    cursor: Any = pooled.cursor()
    utc = _utc_converter(connection.dialect)
    try:
        with cursor.copy(COPY_STATEMENT) as copy:
            copy.set_types(COPY_TYPES)
            for value in values:
                row = list(value)
                row[SCHEDULED_FOR] = utc(row[SCHEDULED_FOR])
                row[CREATED_AT] = utc(row[CREATED_AT])
                copy.write_row(row)
    except connection.dialect.loaded_dbapi.Error as error:
        wrapped = as_sqlalchemy_error(connection.dialect, error, driver, cursor, COPY_STATEMENT)
        if wrapped.connection_invalidated:
            connection.invalidate(error)
        raise wrapped from error
    finally:
        cursor.close()


#: The rows' values are written in the order of ENQUEUE_COLUMNS, in the binary format.
COPY_STATEMENT = f"COPY job_queue ({', '.join(ENQUEUE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"


def _copy_type(column: str) -> str:
    """The PostgreSQL type psycopg writes a column's values as in the binary COPY. The server
    reads each with its column's own type (a ``text`` value is what a ``varchar`` reads)."""
    kind = job_queue.c[column].type
    if isinstance(kind, UTCDateTime):
        return "timestamp"  # naive UTC, as the bind processor makes it
    if isinstance(kind, Integer):
        return "int4"
    if isinstance(kind, String):
        return "text"
    raise TypeError(f"no binary COPY type for job_queue.{column} ({kind!r})")


COPY_TYPES = [_copy_type(column) for column in ENQUEUE_COLUMNS]


def execute_plain(
    connection: Connection, statement: Any, values: Sequence[tuple[Any, ...]]
) -> None:
    """Run ``statement`` (bound by :data:`ENQUEUE_COLUMNS` only) for plain jobs' value tuples
    as driver SQL: compiled once per dialect, each row's values converted by the columns' own
    bind processors and nothing else (one row: one execute; more: one executemany)."""
    sql, params = driver_parameters(connection.dialect, statement, values)
    connection.exec_driver_sql(sql, params[0] if len(params) == 1 else params)


def driver_parameters(
    dialect: Dialect, statement: Any, values: Sequence[tuple[Any, ...]]
) -> tuple[str, list[Any]]:
    """``statement`` as this dialect's driver SQL, and each row's driver parameters: what
    :func:`execute_plain` sends, for a caller that holds a driver cursor. The values are put
    in the statement's order in one C call (``itemgetter``); only the timestamps go through a
    converter."""
    form = _driver_form(dialect, statement)
    take, converted, names, constants = form.take, form.converted, form.names, form.constants
    params: list[Any] = []
    for value in values:
        picked = list(take(value + constants))
        for index, convert in converted:
            picked[index] = convert(picked[index])
        params.append(tuple(picked) if form.positional else dict(zip(names, picked, strict=True)))
    return form.sql, params


#: The INSERT of one plain job row (the batch's driver executemany and the single enqueue's).
PLAIN_INSERT = insert(job_queue).values(
    {column: bindparam(column, type_=job_queue.c[column].type) for column in ENQUEUE_COLUMNS}
)
_Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class _DriverForm:
    """A statement as one dialect's driver SQL: its text; the bound names in the order of its
    placeholders and a getter of their values from a value tuple (with the statement's own
    values, ``constants``, appended); which of those a column's bind processor converts (by
    position); and whether the placeholders are positional (SQLite's ``?``) or named
    (PyMySQL's and psycopg's)."""

    sql: str
    names: tuple[str, ...]
    take: Callable[[tuple[Any, ...]], tuple[Any, ...]]
    converted: tuple[tuple[int, _Converter], ...]
    positional: bool
    constants: tuple[Any, ...]


#: By dialect and statement (the statements are module-level constants, never freed).
_compiled: dict[tuple[str, int], _DriverForm] = {}


def _driver_form(dialect: Dialect, statement: Any) -> _DriverForm:
    """``statement`` compiled for ``dialect`` once, as a :class:`_DriverForm`."""
    key = (dialect.name, id(statement))
    known = _compiled.get(key)
    if known is None:
        compiled = statement.compile(dialect=dialect)
        constants = {
            name: bind.value for name, bind in compiled.binds.items() if name not in _PLAIN
        }
        order = compiled.positiontup if compiled.positional else None
        names = tuple(order or [*ENQUEUE_COLUMNS, *constants])
        position = {name: index for index, name in enumerate([*ENQUEUE_COLUMNS, *constants])}
        converted = tuple(
            (index, convert)
            for index, name in enumerate(names)
            if name in _PLAIN and (convert := _processor(dialect, name)) is not None
        )
        # A tuple: the statements bind every enqueue column.
        take = itemgetter(*(position[name] for name in names))
        known = _DriverForm(
            str(compiled), names, take, converted, order is not None, tuple(constants.values())
        )
        _compiled[key] = known
    return known


def _utc_converter(dialect: Dialect) -> Callable[[datetime], datetime]:
    """UTCDateTime's bind processor: aware to naive UTC, a naive datetime refused."""
    processor = _processor(dialect, "created_at")
    assert processor is not None
    return processor


def _processor(dialect: Any, name: str) -> _Converter | None:
    """The column type's bind processor on this dialect (variants resolved), or None."""
    processor: _Converter | None = (
        job_queue.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    )
    return processor
