"""What ``benchmarks/django_tasks.py`` runs inside Django (one process per step, as the
settings differ by backend), through Django's public tasks API only:

- ``enqueue COUNT IDS_FILE [--warm-up]``: enqueue COUNT no-op tasks, each in its own autocommit
  (``noop.enqueue()`` outside any ``atomic()``), append their ids to IDS_FILE and print the
  seconds the COUNT enqueues took as JSON. ``--warm-up`` first enqueues one task, untimed (its
  id is kept too), so the timing excludes the backend's first connection.
- ``verify IDS_FILE``: ``noop.get_result(id)`` for every id; exit 1 unless all SUCCESSFUL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path


def _setup() -> None:
    repository = str(Path(__file__).resolve().parents[2])
    if repository not in sys.path:
        sys.path.append(repository)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.django_bench.settings")
    import django

    django.setup()


def enqueue(count: int, ids_file: Path, warm_up: bool) -> None:
    from benchmarks.django_bench.noop_app.tasks import noop

    ids: list[str] = []
    if warm_up:
        ids.append(str(noop.enqueue().id))
    started = time.perf_counter()
    for _ in range(count):
        ids.append(str(noop.enqueue().id))
    seconds = time.perf_counter() - started
    with ids_file.open("a") as out:
        out.writelines(f"{task_id}\n" for task_id in ids)
    print(json.dumps({"seconds": seconds, "count": count}))


def verify(ids_file: Path) -> int:
    from django.tasks import TaskResultStatus

    from benchmarks.django_bench.noop_app.tasks import noop

    ids = ids_file.read_text().split()
    statuses = Counter(str(noop.get_result(task_id).status) for task_id in ids)
    successful = statuses.get(str(TaskResultStatus.SUCCESSFUL), 0)
    print(json.dumps({"tasks": len(ids), "statuses": dict(statuses)}))
    return 0 if ids and successful == len(ids) else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.django_bench.client")
    steps = parser.add_subparsers(dest="step", required=True)
    enqueuing = steps.add_parser("enqueue")
    enqueuing.add_argument("count", type=int)
    enqueuing.add_argument("ids_file", type=Path)
    enqueuing.add_argument("--warm-up", action="store_true")
    verifying = steps.add_parser("verify")
    verifying.add_argument("ids_file", type=Path)
    args = parser.parse_args()
    _setup()
    if args.step == "enqueue":
        enqueue(args.count, args.ids_file, args.warm_up)
        return 0
    return verify(args.ids_file)


if __name__ == "__main__":
    sys.exit(main())
