import asyncio
import importlib
import inspect
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from jobqueue import Job, JobCall, RegistryError, UnknownJobError, by_name, job, registry
from jobqueue.registry import JobDefinition


def test_job_registers_under_an_explicit_name() -> None:
    @job(name="tests.plain")
    def plain(x: int) -> int:
        return x * 2

    assert registry.get("tests.plain").target is plain.__wrapped__
    assert plain(21) == 42  # still callable directly


def test_default_name_is_module_dot_qualname() -> None:
    def module_level() -> None: ...

    module_level.__qualname__ = "module_level"
    registered = job(module_level)
    assert registered.name == f"{__name__}.module_level"


def test_function_defined_in_a_function_needs_a_name() -> None:
    with pytest.raises(RegistryError, match="inside a function"):

        @job
        def nested() -> None: ...


def test_main_module_needs_a_name() -> None:
    def in_main() -> None: ...

    in_main.__module__ = "__main__"
    in_main.__qualname__ = "in_main"
    with pytest.raises(RegistryError, match="__main__"):
        job(in_main)


def test_two_different_callables_cannot_share_a_name() -> None:
    @job(name="tests.shared")
    def first() -> None: ...

    with pytest.raises(RegistryError, match="already registered"):

        @job(name="tests.shared")
        def second() -> None: ...


def test_reloading_a_module_replaces_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "jq_reload_target.py"
    template = (
        "from jobqueue import job\n\n\n"
        "@job\ndef work() -> str:\n    return {value!r}\n\n\n"
        "@job(name='tests.reload_named')\ndef named() -> str:\n    return {value!r}\n\n\n"
        "by_lambda = job(name='tests.reload_lambda')(lambda: {value!r})\n"
    )
    source.write_text(template.format(value="old"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.delitem(sys.modules, "jq_reload_target", raising=False)
    module = importlib.import_module("jq_reload_target")
    try:
        assert registry.get("jq_reload_target.work").target() == "old"
        source.write_text(template.format(value="new!"))
        importlib.reload(module)
        for name in ("jq_reload_target.work", "tests.reload_named", "tests.reload_lambda"):
            assert registry.get(name).target() == "new!"
    finally:
        sys.modules.pop("jq_reload_target", None)


def test_two_lambdas_cannot_share_a_name() -> None:
    job(name="tests.lambda")(lambda: 1)
    with pytest.raises(RegistryError, match="already registered"):
        job(name="tests.lambda")(lambda: 2)


def test_two_local_functions_with_one_qualname_cannot_share_a_name() -> None:
    def first_factory() -> Callable[[], int]:
        def task() -> int:
            return 1

        return task

    def second_factory() -> Callable[[], int]:
        def task() -> int:
            return 2

        return task

    first, second = first_factory(), second_factory()
    second.__qualname__ = first.__qualname__  # same module and qualname, different code
    job(name="tests.local")(first)
    with pytest.raises(RegistryError, match="already registered"):
        job(name="tests.local")(second)


def test_one_local_definition_registered_twice_replaces_itself() -> None:
    def factory(value: int) -> Callable[[], int]:
        def task() -> int:
            return value

        return task

    job(name="tests.factory")(factory(1))
    job(name="tests.factory")(factory(2))  # the same def, run again: like a reload
    assert registry.get("tests.factory").target() == 2


def test_two_local_classes_with_one_qualname_cannot_share_a_name() -> None:
    def define(value: int) -> type[Job]:
        if value == 1:

            class Task(Job, name="tests.local_class"):
                def perform(self) -> int:
                    return 1

        else:

            class Task(Job, name="tests.local_class"):  # type: ignore[no-redef]
                def perform(self) -> int:
                    return 2

        return Task

    define(1)
    with pytest.raises(RegistryError, match="already registered"):
        define(2)


def test_options_are_validated_and_kept() -> None:
    @job(name="tests.opts", queue="mail", priority=-5, max_attempts=3, timeout=timedelta(seconds=2))
    def opts() -> None: ...

    assert (opts.options.queue, opts.options.priority, opts.options.max_attempts) == ("mail", -5, 3)
    assert opts.options.timeout == 2.0
    for bad in (
        {"queue": ""},
        {"queue": "*"},
        {"priority": 1.5},
        {"max_attempts": 0},
        {"timeout": -1},
        {"backoff": "fast"},
    ):
        with pytest.raises(ValueError):
            job(name="tests.bad", **bad)(lambda: None)  # type: ignore[arg-type]


def test_async_functions_are_recognised() -> None:
    @job(name="tests.async")
    async def coro(x: int) -> int:
        return x

    assert registry.get("tests.async").is_async
    assert asyncio.run(coro(3)) == 3
    # What frameworks ask before awaiting a callable (FastAPI, pytest plugins, asyncio).
    assert inspect.iscoroutinefunction(coro) and asyncio.iscoroutinefunction(coro)
    assert inspect.signature(coro) == inspect.signature(coro.__wrapped__)

    @job(name="tests.sync")
    def plain(x: int) -> int:
        return x

    assert not inspect.iscoroutinefunction(plain)


def test_class_jobs_register_and_run_on_a_fresh_instance() -> None:
    class Resize(Job, name="tests.resize", queue="images", timeout=5):
        def perform(self, path: str) -> str:
            return f"resized {path}"

    definition = registry.get("tests.resize")
    assert definition.job_class is Resize
    assert definition.options.queue == "images"
    assert definition.callable_for_run()("a.png") == "resized a.png"
    call = Resize.call("a.png")
    assert (call.name, call.queue, list(call.args)) == ("tests.resize", "images", ["a.png"])


def test_class_job_subclass_inherits_options_not_name() -> None:
    class Base(Job, abstract=True, queue="reports", max_attempts=2):
        def perform(self) -> None: ...

    class Daily(Base, name="tests.daily"):
        pass

    assert Daily.definition.options.queue == "reports"
    assert Daily.definition.options.max_attempts == 2
    with pytest.raises(RegistryError, match="abstract"):
        Base.call()
    with pytest.raises(RegistryError, match="abstract"):
        Base.using(queue="x")
    # Looking the methods up (help(), docs tools, hasattr) never raises; calling them does.
    assert all(hasattr(cls, "enqueue") for cls in (Job, Base, Daily))
    with pytest.raises(TypeError, match="expected a @job function, a Job subclass"):
        Job.enqueue()


def test_class_job_without_perform_is_refused() -> None:
    with pytest.raises(RegistryError, match="perform"):

        class Empty(Job, name="tests.empty"):
            pass


def test_unknown_name_raises_a_clear_error() -> None:
    with pytest.raises(UnknownJobError, match="no job is registered under the name 'nope'"):
        registry.get("nope")


def test_by_name_uses_registered_options_or_defaults() -> None:
    @job(name="tests.billing", queue="billing", priority=3)
    def charge(amount: int) -> None: ...

    assert by_name("tests.billing").call(5).queue == "billing"
    call = by_name("elsewhere.job", queue="far").call(1, x=2)
    assert (call.name, call.queue, call.priority, dict(call.kwargs)) == (
        "elsewhere.job",
        "far",
        0,
        {"x": 2},
    )


def test_using_overrides_options_without_changing_the_job() -> None:
    @job(name="tests.using", queue="a")
    def f() -> None: ...

    assert f.using(queue="b", priority=7).call().queue == "b"
    assert f.call().queue == "a"


def test_job_call_validates_its_fields() -> None:
    with pytest.raises(ValueError):
        JobCall("x", queue="")
    with pytest.raises(TypeError):
        JobCall("x", args="abc")  # type: ignore[arg-type]
    assert isinstance(JobDefinition("n", print).options.max_attempts, int)


def test_an_unknown_option_is_refused_by_name() -> None:
    """The options are written once (keyword dictionaries), so a misspelt one must still be
    an error naming it, at definition and at using() alike."""
    with pytest.raises(TypeError, match=r"unknown job option.*queu"):
        job(name="tests.misspelt", queu="a")(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"unknown job option.*prio"):

        class Misspelt(Job, name="tests.misspelt_class", prio=3):  # type: ignore[call-arg]
            def perform(self) -> None: ...

    @job(name="tests.using_misspelt")
    def f() -> None: ...

    with pytest.raises(TypeError, match=r"unknown option.*queu"):
        f.using(queu="a")  # type: ignore[call-arg]
