"""The error record: how a failed attempt's error is stored in ``last_error`` and read back.

One shape for every writer (a job's exception, a lost worker, an error that could not be
formatted) and every reader (``jobrunner jobs show``, the dashboard), so the JSON is built in
one place and parsed in one place.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import asdict, dataclass

#: Longest traceback text kept; the middle is cut, the start and the end (where it raised) stay.
MAX_ERROR_CHARS = 32_000
MAX_MESSAGE_CHARS = 4_000


@dataclass(frozen=True)
class ErrorRecord:
    """``type`` is ``module.Qualname`` of the exception class."""

    type: str
    message: str
    traceback: str = ""

    @property
    def summary(self) -> str:
        return f"{self.type}: {self.message}" if self.type else self.message

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def of(cls, error: BaseException, *, with_traceback: bool = True) -> ErrorRecord:
        """The record of ``error``; raises if even ``str(error)`` raises (the caller decides
        what to store then, see :meth:`unrecordable`)."""
        text = "".join(traceback.format_exception(error)) if with_traceback else ""
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS // 4] + "\n...\n" + text[-MAX_ERROR_CHARS // 2 :]
        return cls(_qualified(type(error)), str(error)[:MAX_MESSAGE_CHARS], text)

    @classmethod
    def unrecordable(cls, error: BaseException, failure: BaseException) -> ErrorRecord:
        """What is stored when recording ``error`` itself failed with ``failure``."""
        message = f"(the error could not be recorded in full: {failure!r})"
        return cls(_qualified(type(error)), message)

    @classmethod
    def parse(cls, stored: str) -> ErrorRecord:
        """Read ``last_error`` back; text that is not a record (written by hand, or by an
        older version) becomes the message of an untyped record rather than an error."""
        try:
            data = json.loads(stored)
            return cls(str(data["type"]), str(data["message"]), str(data.get("traceback") or ""))
        except (ValueError, TypeError, KeyError):
            return cls("", stored)


def _qualified(kind: type[BaseException]) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"
