"""Strict JSON for job arguments.

Arguments cross a process boundary through the database, so only what JSON holds exactly is
accepted: ``None``, ``bool``, ``int``, finite ``float``, ``str``, lists (tuples come back as
lists) and dicts with string keys. Python's own ``json`` would silently turn ``{1: "a"}`` into
``{"1": "a"}`` and write ``NaN``, which other JSON readers reject; we refuse both at the call,
naming the offending value and where it sits, so nothing half-valid reaches the table. Nothing is
ever unpickled: a row can only describe a call to a job the worker already registered.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from jobqueue.errors import PayloadTooLargeError, SerializationError

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024

_SCALARS = (str, int, bool, type(None))


def _check(value: Any, path: str) -> None:
    """Walk ``value`` and raise :class:`SerializationError` at the first thing JSON cannot hold."""
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"{path} is {value!r}: JSON has no NaN or infinity")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(
                    f"{path} has the key {key!r} of type {type(key).__name__}: JSON object keys "
                    "must be strings (json would silently turn it into a string)"
                )
            _check(item, f"{path}[{key!r}]")
        return
    raise SerializationError(
        f"{path} is {_short_repr(value)} of type {type(value).__name__}, which is not "
        "JSON-serializable; pass plain data (str, int, float, bool, None, list, dict) "
        "such as an id, and load the object inside the job"
    )


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def encode_arguments(
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> str:
    """Encode a call's arguments as the JSON text stored in ``job_queue.args``."""
    for index, item in enumerate(args):
        _check(item, f"args[{index}]")
    for key, item in kwargs.items():
        _check(item, f"kwargs[{key!r}]")
    payload: dict[str, Any] = {"args": list(args)}
    if kwargs:
        payload["kwargs"] = dict(kwargs)
    text = json.dumps(payload, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"the encoded arguments are {size:,} bytes, over the limit of {max_bytes:,} bytes; "
            "store large data elsewhere and pass a reference, or raise max_payload_bytes"
        )
    return text


def decode_arguments(text: str) -> tuple[list[Any], dict[str, Any]]:
    """Decode ``job_queue.args``; a malformed row raises ``ValueError`` naming what is wrong."""
    try:
        payload = json.loads(text)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the stored arguments are not valid JSON: {error}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("args", []), list):
        raise ValueError('the stored arguments are not an object of the form {"args": [...]}')
    kwargs = payload.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError("the stored keyword arguments are not a JSON object")
    return payload.get("args", []), kwargs


def canonical_digest(value: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces): the stable key of unique jobs."""
    _check(value, "value")
    text = json.dumps(value, allow_nan=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
