import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobqueue.errors import PayloadTooLargeError, SerializationError
from jobqueue.serialization import canonical_digest, decode_arguments, encode_arguments


def test_round_trip_of_plain_json_values() -> None:
    args = [1, -2.5, "héllo ✓", None, True, [1, [2]], {"a": {"b": [None]}}]
    text = encode_arguments(args, {"key": "value", "n": 3})
    assert decode_arguments(text) == (args, {"key": "value", "n": 3})


def test_tuples_come_back_as_lists() -> None:
    assert decode_arguments(encode_arguments(((1, 2),), {}))[0] == [[1, 2]]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({1, 2}, "args[0] is {1, 2} of type set"),
        (b"raw", "of type bytes"),
        (object(), "of type object"),
        (Decimal("1.5"), "of type Decimal"),
        (math.nan, "args[0] is nan"),
        (math.inf, "args[0] is inf"),
        ({1: "a"}, "has the key 1 of type int"),
        ({"ok": [{(1, 2): 3}]}, "args[0]['ok'][0] has the key (1, 2)"),
    ],
)
def test_values_json_cannot_hold_are_refused_naming_them(value: object, fragment: str) -> None:
    with pytest.raises(SerializationError) as raised:
        encode_arguments([value], {})
    assert fragment in str(raised.value)
    assert isinstance(raised.value, TypeError)


def test_keyword_arguments_are_checked_too() -> None:
    with pytest.raises(SerializationError, match=r"kwargs\['when'\]"):
        encode_arguments([], {"when": {1, 2}})


def test_payload_over_the_limit_is_refused() -> None:
    encode_arguments(["x" * 900], {}, max_bytes=1000)
    with pytest.raises(PayloadTooLargeError, match="over the limit of 1,000 bytes"):
        encode_arguments(["x" * 1000], {}, max_bytes=1000)


def test_limit_counts_utf8_bytes_not_characters() -> None:
    with pytest.raises(PayloadTooLargeError):
        encode_arguments(["é" * 600], {}, max_bytes=1000)


@pytest.mark.parametrize(
    "text", ["not json", "[1, 2]", '{"args": 5}', '{"args": [], "kwargs": [1]}']
)
def test_malformed_rows_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="stored"):
        decode_arguments(text)


def test_canonical_digest_ignores_key_order_but_not_values() -> None:
    assert canonical_digest({"a": 1, "b": 2}) == canonical_digest({"b": 2, "a": 1})
    assert canonical_digest({"a": 1}) != canonical_digest({"a": 2})
    assert len(canonical_digest([1])) == 64


def test_non_string_keys_of_the_keyword_mapping_are_refused() -> None:
    with pytest.raises(SerializationError, match=r"kwargs has the key 1 of type int"):
        encode_arguments([], {1: "a"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        (["ok\ud800"], {}, "args[0]"),
        ([{"k\udfff": 1}], {}, "args[0] has the key"),
        ([], {"x": ["\ud800"]}, "kwargs['x'][0]"),
        ([], {"\ud800": 1}, "kwargs has the key"),
    ],
)
def test_lone_surrogates_are_refused_not_a_unicode_error(
    args: list[object], kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(SerializationError, match="surrogate") as raised:
        encode_arguments(args, kwargs)
    assert fragment in str(raised.value)
    assert isinstance(raised.value, TypeError)


def test_self_referencing_structures_are_refused() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    with pytest.raises(SerializationError, match=r"args\[0\]\[1\] is circular"):
        encode_arguments([loop], {})
    mapping: dict[str, object] = {}
    mapping["self"] = {"inner": mapping}
    with pytest.raises(SerializationError, match="circular"):
        encode_arguments([], {"m": mapping})
    with pytest.raises(SerializationError, match="circular"):
        canonical_digest(loop)


def test_the_same_value_twice_is_not_circular() -> None:
    shared = [1, 2]
    assert decode_arguments(encode_arguments([shared, shared], {"s": shared})) == (
        [[1, 2], [1, 2]],
        {"s": [1, 2]},
    )


def test_absurdly_deep_structures_are_refused_not_a_recursion_error() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SerializationError, match="nested deeper than 200"):
        encode_arguments([deep], {})
    with pytest.raises(SerializationError, match="nested deeper than 200"):
        canonical_digest(deep)
    nested: object = 0
    for _ in range(150):
        nested = {"a": [nested]}
    with pytest.raises(SerializationError, match="nested deeper than 200"):
        encode_arguments([nested], {})
    fine: object = 0
    for _ in range(90):
        fine = {"a": [fine]}
    assert decode_arguments(encode_arguments([fine], {}))[0] == [fine]


def test_a_stored_row_nested_past_the_interpreter_s_limit_is_a_clear_error() -> None:
    """Enqueue refuses such nesting, but a row written some other way must still fail its
    attempt (and show in the CLI and dashboard) with an error, not a RecursionError."""
    deep = '{"args": [' + "[" * 200_000 + "]" * 200_000 + "]}"
    with pytest.raises(ValueError, match="nested too deeply"):
        decode_arguments(deep)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.lists(json_values, max_size=4), st.dictionaries(st.text(max_size=8), json_values))
def test_the_stored_text_is_what_the_json_module_writes(
    args: list[Any], kwargs: dict[str, Any]
) -> None:
    """encode_arguments reuses one C encoder instead of json's per-call one: the text must be
    exactly what json.dumps with the same options writes."""
    payload: dict[str, Any] = {"args": args, **({"kwargs": kwargs} if kwargs else {})}
    expected = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        expected.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: refused before encoding (tested above)
        return
    assert encode_arguments(args, kwargs) == expected
