"""A throwaway Django project for ``benchmarks/django_tasks.py``: one settings module (which
tasks backend and which database come from ``BENCH_DJ_*`` environment variables), one app with
a no-op task, a ``manage.py`` for the workers, and the client the benchmark runs in Django."""
