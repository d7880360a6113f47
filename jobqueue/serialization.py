"""Strict JSON for job arguments.

Arguments cross a process boundary through the database, so only what JSON holds exactly is
accepted: ``None``, ``bool``, ``int``, finite ``float``, ``str``, lists (tuples come back as
lists) and dicts with string keys. Python's own ``json`` would silently turn ``{1: "a"}`` into
``{"1": "a"}`` and write ``NaN``, which other JSON readers reject; we refuse both at the call,
naming the offending value and where it sits, so nothing half-valid reaches the table. Text with a
lone surrogate (which UTF-8 cannot encode), circular structures and nesting deeper than
``MAX_DEPTH`` are refused the same way, never as UnicodeEncodeError or RecursionError. Nothing is
ever unpickled: a row can only describe a call to a job the worker already registered.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jobqueue.errors import PayloadTooLargeError, SerializationError

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024

#: Containers nested deeper than this are refused (a runaway structure, not an argument list).
MAX_DEPTH = 200

_SCALARS = (int, bool, type(None))


def _check(value: Any, path: str, active: set[int] | None = None, depth: int = 1) -> None:
    """Walk ``value`` and raise :class:`SerializationError` at the first thing JSON cannot hold.

    ``active`` holds the ids of the containers being walked (a container met again inside
    itself is circular) and ``depth`` how deeply nested ``value`` is, capped at ``MAX_DEPTH``
    so that neither this walk nor ``json`` hits Python's recursion limit.
    """
    if isinstance(value, str):
        _check_text(value, path)
        return
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"{path} is {value!r}: JSON has no NaN or infinity")
        return
    if isinstance(value, list | tuple | dict):
        if active is None:
            active = set()
        identity = id(value)
        if identity in active:
            raise SerializationError(
                f"{_short_path(path)} is circular: it refers to a list or dict that contains it"
            )
        if depth > MAX_DEPTH:
            raise SerializationError(
                f"{_short_path(path)} is nested deeper than {MAX_DEPTH} levels of lists and dicts"
            )
        active.add(identity)
        try:
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_key(key, path)
                    _check(item, f"{path}[{key!r}]", active, depth + 1)
            else:
                for index, item in enumerate(value):
                    _check(item, f"{path}[{index}]", active, depth + 1)
        finally:
            active.discard(identity)
        return
    raise SerializationError(
        f"{path} is {_short_repr(value)} of type {type(value).__name__}, which is not "
        "JSON-serializable; pass plain data (str, int, float, bool, None, list, dict) "
        "such as an id, and load the object inside the job"
    )


def _plain(value: Any) -> bool:
    """The common arguments (ids, flags, ASCII text) that need no walk, checked without
    building the path string the walk would carry for its error message."""
    kind = type(value)
    return kind is int or kind is bool or value is None or (kind is str and value.isascii())


def _check_key(key: Any, path: str) -> None:
    if not isinstance(key, str):
        raise SerializationError(
            f"{path} has the key {_short_repr(key)} of type {type(key).__name__}: JSON object "
            "keys must be strings (json would silently turn it into a string)"
        )
    _check_text(key, f"{path} has the key {_short_repr(key)} that")


def _check_text(text: str, path: str) -> None:
    """Refuse text UTF-8 cannot encode (a lone surrogate such as ``"\\ud800"``)."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise SerializationError(
            f"{path} contains the lone surrogate {text[error.start]!r} at index {error.start}, "
            "which UTF-8 cannot encode"
        ) from None


def _short_path(path: str, limit: int = 120) -> str:
    return path if len(path) <= limit else path[: limit - 3] + "..."


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# One encoder for every call: json.dumps with options builds a new one each time.
_ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def _one_shot_encoder() -> Callable[[Any], str]:
    """``_ENCODER.encode``, without building the json module's C encoder anew for every call
    (``JSONEncoder.encode`` does: 1.3 of the 1.5 us an enqueue's arguments took). The C
    encoder is made once, with the same options and no circularity markers: what reaches it
    was walked by :func:`_check`, which refuses circular values, deep nesting and NaN first.
    Where the json module has no C encoder, ``_ENCODER.encode`` it is."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always builds _json
        return _ENCODER.encode
    encode = make(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def one_shot(value: Any) -> str:
        return "".join(encode(value, 0))

    return one_shot


_encode = _one_shot_encoder()


def encode_arguments(
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> str:
    """Encode a call's arguments as the JSON text stored in ``job_queue.args``."""
    # The argument containers themselves count as walked: an argument that contains them is
    # circular.
    active = {id(args), id(kwargs)}
    for index, item in enumerate(args):
        if not _plain(item):
            _check(item, f"args[{index}]", active)
    for key, item in kwargs.items():
        _check_key(key, "kwargs")
        if not _plain(item):
            _check(item, f"kwargs[{key!r}]", active)
    payload: dict[str, Any] = {"args": list(args)}
    if kwargs:
        payload["kwargs"] = dict(kwargs)
    text = _encode(payload)
    if len(text) * 4 > max_bytes:  # at most 4 bytes a character: short texts fit unmeasured
        _limit(text, max_bytes, "the encoded arguments are", "pass a reference, or raise it")
    return text


def _limit(text: str, max_bytes: int, what: str, instead: str) -> None:
    """Raise :class:`PayloadTooLargeError` if ``text`` is over ``max_bytes`` of UTF-8."""
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"{what} {size:,} bytes, over the limit of {max_bytes:,} bytes (max_payload_bytes); "
            f"store large data elsewhere and {instead}"
        )


def encode_value(
    value: Any, *, what: str = "the result", max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
) -> str:
    """Encode one value (a job's result, a step's) as strict JSON text, by the argument rules:
    :class:`SerializationError` names what JSON cannot hold, :class:`PayloadTooLargeError` a
    text over ``max_bytes``."""
    if not _plain(value):
        _check(value, what)
    text = _ENCODER.encode(value)
    if len(text) * 4 > max_bytes:
        _limit(text, max_bytes, f"{what} is", "return a reference")
    return text


def decode_value(text: str) -> Any:
    """Decode what :func:`encode_value` wrote."""
    return json.loads(text)


def decode_arguments(text: str) -> tuple[list[Any], dict[str, Any]]:
    """Decode ``job_queue.args``; a malformed row raises ``ValueError`` naming what is wrong."""
    try:
        payload = json.loads(text)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the stored arguments are not valid JSON: {error}") from None
    except RecursionError:
        # Enqueue refuses nesting past MAX_DEPTH; a row written some other way still gets a
        # clear error instead of a crash wherever it is read (worker, CLI, dashboard).
        raise ValueError("the stored arguments are nested too deeply to decode") from None
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
