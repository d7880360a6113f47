"""Every SQL statement jobqueue runs, as named functions over a caller's ``Connection``.

Backend differences live here (``dialect``), in :mod:`jobqueue.db` (engines) and in
:mod:`jobqueue.schema` (types); the modules above this package build no SQL. One module a
concern: ``jobs`` (insert and read rows), ``claims`` (take due jobs), ``attempts`` (the fenced
changes of a claimed job), ``operator`` (operators' changes and counts), ``processes``,
``semaphores``, ``counters``, ``recurring``.
"""
