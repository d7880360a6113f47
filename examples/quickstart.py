"""Quickstart: define jobs, enqueue them, and let `jobrunner work` run them.

    jobrunner migrate                                   # create the tables in ./jobqueue.db
    python examples/quickstart.py                       # enqueue a few jobs
    jobrunner work --app examples.quickstart --burst    # run them and exit when done

Jobs defined in a script get an explicit ``name=``: the worker imports this file as the module
``examples.quickstart``, and the name is what connects the two.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jobqueue import Job, enqueue_many, job


@job(name="examples.send_welcome", queue="mail", max_attempts=8)
def send_welcome(user_id: int, greeting: str = "Welcome") -> None:
    print(f"{greeting}, user {user_id}!")


@job(name="examples.add")
async def add(a: int, b: int) -> int:
    return a + b


class Resize(Job, name="examples.resize", queue="images", timeout=30):
    def perform(self, path: str, width: int) -> None:
        print(f"resizing {path} to {width}px")


def main() -> None:
    jobs = [
        send_welcome.enqueue(42),
        send_welcome.using(priority=-5, queue="urgent").enqueue(7, greeting="Hello"),
        # enqueue_at takes an aware time; enqueue_in(timedelta(minutes=10), ...) runs it later
        # (and `work --burst` would leave it pending, saying so in its last line).
        send_welcome.enqueue_at(datetime.now(UTC), 43),
        add.enqueue(2, 3),
        Resize.enqueue("cat.png", width=200),
    ]
    jobs += enqueue_many([send_welcome.call(user_id) for user_id in range(100, 110)])
    for handle in jobs[:5]:
        print(f"enqueued {handle.name} as {handle.id} on queue {handle.queue!r}")
    print(f"enqueued {len(jobs)} jobs")


if __name__ == "__main__":
    main()
