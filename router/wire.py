"""Helpers for codecs whose round trip must be type-exact: numbers, money, timestamps.

The core checks ``encode(decode(raw)) == raw`` with the types kept: ``12``
must come back as ``12``, not ``12.0``, a field that was absent must stay
absent, and an empty one empty. These helpers do the bookkeeping that every
codec would otherwise repeat:

- JSON numbers as ``decimal.Decimal`` that remember whether they were
  an int or a float (``decimal_of``, ``number_of``), and exact text
  forms (``exact_decimal``, ``exact_int``);
- money from and to a JSON amount (``money_of``, ``amount_of``);
- ISO 8601 timestamps in UTC milliseconds (``parse_iso``,
  ``format_iso``);
- the raw form of a field that the canonical value cannot give back
  (``field_of``, ``remember``, ``recall``), with ``ABSENT``
  for a field that was not there at all.

Everything here is pure and JSON-safe: what ``remember`` writes can sit
in ``Event.extras`` and survive the spool.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from router.event import Money

__all__ = [
    "ABSENT",
    "INT64_MAX",
    "INT64_MIN",
    "UINT64_MAX",
    "Absent",
    "amount_of",
    "decimal_of",
    "exact_decimal",
    "exact_int",
    "field_of",
    "format_iso",
    "money_of",
    "number_of",
    "parse_iso",
    "recall",
    "remember",
    "same_json",
]

#: The signed 64-bit range: what a canonical event may hold as an int.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
#: The largest integer a JSON encoder (orjson) writes as an integer.
UINT64_MAX: Final = 2**64 - 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class Absent(enum.Enum):
    """The type of ``ABSENT``."""

    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


#: A field that was not in the object at all, unlike ``None`` (a JSON
#: ``null``) or ``""`` (an empty string).
ABSENT: Final = Absent.ABSENT


# ------------------------------------------------------------------- numbers


def decimal_of(value: int | float) -> Decimal:
    """A JSON number as a Decimal that remembers whether it was an int or a float.

    An int gets exponent 0, a float a negative one, so ``number_of`` gives
    back the same JSON type: ``12`` -> ``Decimal("12")``, ``12.0`` ->
    ``Decimal("12.0")``, ``1.4727522855350092e+16`` ->
    ``Decimal("14727522855350092.0")``.

    :raises TypeError: for a bool or anything that is not an int or a float.
    """
    if type(value) is int:
        return Decimal(value)
    if type(value) is not float:
        raise TypeError(f"expected a JSON number (int or float), got {type(value).__name__}")
    # repr() of a float is its shortest text: 12.34 -> Decimal("12.34").
    amount = Decimal(repr(value))
    if amount.is_finite() and amount.as_tuple().exponent >= 0:  # 1e+16, 1.2e+17
        amount = Decimal(f"{int(value)}.0")
    return amount


def number_of(amount: Decimal, *, max_int: int | None = UINT64_MAX) -> int | float:
    """A Decimal as a JSON number: an int if it has exponent 0, else a float.

    The inverse of ``decimal_of``. ``Decimal("12")`` -> ``12``,
    ``Decimal("12.0")`` -> ``12.0``, ``Decimal("1E+2")`` -> ``100.0``; an
    integer outside ``-2**63 .. max_int`` is a float (orjson stops at 64
    bits); ``max_int=None`` keeps every integer an int, for a vendor whose
    JSON may hold larger ones.

    :raises ValueError: for NaN, an infinity, or a value no float can hold.
    """
    if not amount.is_finite():
        raise ValueError(f"{amount} is not a finite number")
    if amount.as_tuple().exponent == 0:
        value = int(amount)
        if max_int is None or INT64_MIN <= value <= max_int:
            return value
    number = float(amount)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"{amount} is too large for a JSON number")
    return number


def exact_decimal(text: Any) -> Decimal | None:
    """The Decimal of a string that prints back identically (``"12.50"``), else ``None``.

    "Prints back" is ``format(amount, "f")``: ``"1E+3"`` (printed ``"1000"``)
    and ``"NaN"`` give ``None``, so the codec keeps such a string as it is.
    """
    if not isinstance(text, str):
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and format(amount, "f") == text else None


def exact_int(text: Any) -> int | None:
    """The int of a string that prints back identically (``"2"``, not ``"02"``), else ``None``.

    Only a signed 64-bit one: a canonical event must serialize.
    """
    if not isinstance(text, str):
        return None
    try:
        number = int(text)
    except ValueError:
        return None
    return number if str(number) == text and INT64_MIN <= number <= INT64_MAX else None


# --------------------------------------------------------------------- money


def money_of(amount: int | float, currency: str | None = None) -> Money:
    """A JSON amount and its currency as ``router.Money`` (see ``decimal_of``)."""
    return Money(decimal_of(amount), currency)


def amount_of(money: Money, *, max_int: int | None = UINT64_MAX) -> int | float:
    """The JSON amount of ``money``, of the type it was decoded from (see ``number_of``)."""
    return number_of(money.amount, max_int=max_int)


# ---------------------------------------------------------------- timestamps


def parse_iso(text: Any) -> int | None:
    """An ISO 8601 date-time as milliseconds since the epoch, UTC; ``None`` if it is not one.

    Takes what ``datetime.fromisoformat`` takes (``T`` or a space, an
    optional fraction, ``Z`` or an offset); no offset means UTC. Digits past
    the millisecond are dropped (floored).
    """
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def format_iso(ms: int, *, sep: str = "T", millis: bool = True, zone: str = "Z") -> str:
    """Milliseconds since the epoch as ISO 8601 in UTC: ``2024-05-01T12:00:00.250Z``.

    :param sep: Between date and time (``" "`` for ``2024-05-01 12:00:00``).
    :param millis: Whether to write ``.sss`` (else the time is floored to the second).
    :param zone: Written after the time: ``"Z"``, ``"+00:00"`` or ``""``.
    :raises ValueError: if the time is outside years 1 to 9999.
    """
    if millis:
        return _format_iso(ms, sep, True, zone)
    return _format_iso(ms // 1000 * 1000, sep, False, zone)  # one cache entry per second


@functools.lru_cache(maxsize=4096)  # a request's events mostly share their time
def _format_iso(ms: int, sep: str, millis: bool, zone: str) -> str:
    try:
        moment = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError as exc:
        raise ValueError(f"timestamp {ms} is outside years 1-9999") from exc
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{sep}"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if millis:
        text += f".{moment.microsecond // 1000:03d}"
    return text + zone


# ------------------------------------------------- absent versus empty, raw forms


def same_json(a: Any, b: Any) -> bool:
    """Equal with the JSON types kept: ``1``, ``1.0`` and ``True`` all differ.

    Lists and dicts compare item by item; dict key order does not count.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def field_of(raw: Mapping[str, Any], key: str) -> Any:
    """``raw[key]``, or ``ABSENT`` if ``raw`` has no such key (``None`` is a JSON null)."""
    return raw.get(key, ABSENT)


def remember(notes: MutableMapping[str, Any], key: str, raw: Any, rebuilt: Any) -> None:
    """Note the raw form of field ``key`` in ``notes`` unless ``rebuilt`` is the same.

    :param raw: What the vendor sent (``field_of``), ``ABSENT`` included.
    :param rebuilt: What encoding would write from the canonical value alone
        (``ABSENT`` if it would leave the field out).

    The note is JSON-safe: ``[raw]`` for a value, ``[]`` for an absent field.
    """
    if raw is ABSENT and rebuilt is ABSENT:
        return
    if raw is not ABSENT and rebuilt is not ABSENT and same_json(raw, rebuilt):
        return
    notes[key] = [] if raw is ABSENT else [raw]


def recall(notes: Mapping[str, Any] | None, key: str, rebuilt: Any) -> Any:
    """The raw form ``remember`` noted for ``key``, else ``rebuilt``.

    Returns ``ABSENT`` for a field to leave out. Write the field with::

        value = recall(notes, "id", event.id)
        if value is not ABSENT:
            out["id"] = value
    """
    if notes is None or key not in notes:
        return rebuilt
    note = notes[key]
    return note[0] if note else ABSENT
