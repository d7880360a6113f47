"""due-work-harness with its Django host on examples/django_site's handoff: the view that saves
an order and enqueues its confirmation in one ``atomic()`` block. The harness runs the view
and recovers with ``manage.py jobrunner work --burst`` in normal operation, with the process
killed right after each commit on Django's connection, and with every ``task_enqueued``
receiver failing; each history must end where normal operation does. Its Django killer needs
PostgreSQL, so this runs in the tier's PostgreSQL pass only."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from django.db import connection
from django.tasks.signals import task_enqueued
from django.test import RequestFactory
from due_work_harness import (
    Adoption,
    CallableDelivery,
    DueWorkContract,
    DueWorkSource,
    HandoffHistory,
    NotApplicable,
    Profile,
    SafetyContract,
    SafetyProfile,
    due_work_contract_suite,
    hosted,
)
from due_work_harness.integrations.django import django_host
from due_work_harness.integrations.django.commands import management_command
from due_work_harness.integrations.django.receivers import django_receiver_breaker
from shop import views
from shop.models import Order

if connection.vendor != "postgresql":
    pytest.skip(
        "due-work-harness's Django host kills on PostgreSQL commits only; this tier pass runs "
        f"on {connection.vendor}",
        allow_module_level=True,
    )

HOST = django_host(
    production_packages={"jobqueue", "shop", "site_config"},
    receiver_breaker=django_receiver_breaker(task_enqueued),
)
ELSEWHERE = (
    "proven for the same worker by tests/due_work with jobqueue's own host "
    "(jobqueue.testing.due_work); this contract covers the Django site's handoff"
)
_references = itertools.count()


def _new_order() -> str:  # ARRANGE: a fresh order reference
    return f"due-{next(_references)}"


def _place(reference: str) -> None:  # TRANSITION: the real view, with a real POST request
    response = views.place_order(RequestFactory().post("/orders/", {"reference": reference}))
    assert response.status_code == 201, response.status_code


def _seen(reference: str) -> list[tuple[bool, int]]:  # OBSERVE: the order and its task's work
    return list(Order.objects.filter(reference=reference).values_list("confirmed", "confirmations"))


with hosted(HOST):  # the database marks are read when the cases are generated
    ORDERS = DueWorkContract(
        name="examples/django_site orders",
        adoption=Adoption.LEGACY,
        transactional=True,
        profiles={
            Profile.A: NotApplicable(ELSEWHERE),
            Profile.B: NotApplicable(ELSEWHERE),
            Profile.C: NotApplicable(ELSEWHERE),
            Profile.D: NotApplicable("pruning deletes only finished jobs: no owed row"),
            Profile.E: NotApplicable("one worker settles each attempt; the fence refuses others"),
            Profile.F: NotApplicable("the obligation is the job row itself, not a derived fact"),
        },
        safety=SafetyContract(
            name="examples/django_site orders",
            adoption=Adoption.LEGACY,
            profiles={
                SafetyProfile.REPLAY_SAFE_EXECUTION: NotApplicable(ELSEWHERE),
                SafetyProfile.BOUNDED_RETRY: NotApplicable(ELSEWHERE),
            },
        ),
        handoffs=(
            HandoffHistory(
                name="placing an order enqueues its confirmation",
                arrange=_new_order,
                transition=_place,
                observe=_seen,
            ),
        ),
        handoff_delivery=CallableDelivery(
            name="manage.py jobrunner work --burst",
            recover=management_command("jobrunner", "work", "--burst"),
        ),
    )
    SUITE = due_work_contract_suite(ORDERS, covers=(DueWorkSource(views.place_order),))


@pytest.fixture(autouse=True)
def _host() -> Iterator[None]:
    with hosted(HOST):  # the proofs read the host at run time
        yield


@SUITE
class TestDjangoSiteDueWork:
    pass
