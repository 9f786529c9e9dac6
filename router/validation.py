"""Per-event validation against the cerberus schemas plugins register.

Cerberus is the schema language and the source of every error message.
:class:`Validators` builds one checker per (vendor, event type) at startup;
``check`` returns the list of :class:`FieldError` (empty when valid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cerberus

from router.errors import FieldError

__all__ = ["SchemaValidator", "ValidatorSpec", "Validators", "flatten_errors"]

#: The event type of a vendor's fallback spec, used for types with no spec of their own.
ANY_TYPE = "*"


class SchemaValidator(cerberus.Validator):
    """Cerberus with JSON's notion of types: ``true`` is not an integer.

    Cerberus follows Python, where ``bool`` subclasses ``int``, so a stock
    validator accepts ``"quantity": true`` as an integer. No vendor API does;
    every event schema is checked with this class instead.
    """

    types_mapping = {
        **cerberus.Validator.types_mapping,
        "integer": cerberus.TypeDefinition("integer", (int,), (bool,)),
        "float": cerberus.TypeDefinition("float", (float, int), (bool,)),
    }


@dataclass(frozen=True, slots=True)
class ValidatorSpec:
    """The schema of one event type of one vendor.

    :param vendor: The codec name (``"moloco"``).
    :param event_type: The vendor's type name as ``Codec.event_type`` returns
        it, or ``"*"`` for every type with no spec of its own (and for events
        whose type is missing or unknown).
    :param schema: A cerberus schema for the whole event.
    :param require_any: Groups of dotted paths; for each group at least one
        path must hold a non-empty value (``("user_id", "device.persistent_id",
        "custom_id")``). For rules cerberus cannot express across fields.
    :param allow_unknown: Whether fields the schema does not name are allowed.
    """

    vendor: str
    event_type: str
    schema: Mapping[str, Any]
    require_any: tuple[tuple[str, ...], ...] = ()
    allow_unknown: bool = True


Check = Callable[[Any], list[FieldError]]


class Validators:
    """All registered validators, by vendor and event type."""

    def __init__(self, specs: Iterable[ValidatorSpec]):
        self._checks: dict[tuple[str, str], Check] = {}
        self.specs: dict[tuple[str, str], ValidatorSpec] = {}
        for spec in specs:
            key = (spec.vendor, spec.event_type)
            self.specs[key] = spec
            self._checks[key] = _cerberus_check(spec)

    def vendors(self) -> set[str]:
        return {vendor for vendor, _ in self.specs}

    def event_types(self, vendor: str) -> list[str]:
        return sorted(t for v, t in self.specs if v == vendor and t != ANY_TYPE)

    def check(self, vendor: str, event_type: str | None, doc: Any) -> list[FieldError]:
        """The errors of one event; ``[]`` when it is valid.

        Uses the spec of ``event_type`` if there is one, else the vendor's
        ``"*"`` spec; a vendor with neither accepts any JSON object.
        """
        check = self._checks.get((vendor, event_type)) if event_type is not None else None
        if check is None:
            check = self._checks.get((vendor, ANY_TYPE))
        if check is None:
            return [] if isinstance(doc, dict) else [FieldError((), "must be a JSON object")]
        return check(doc)


def _cerberus_check(spec: ValidatorSpec) -> Check:
    validator = SchemaValidator(spec.schema, allow_unknown=spec.allow_unknown)
    groups = spec.require_any

    def check(doc: Any) -> list[FieldError]:
        if not isinstance(doc, dict):
            return [FieldError((), "must be a JSON object")]
        if not validator.validate(doc, normalize=False):
            return flatten_errors(validator.errors)
        return missing_any(doc, groups)

    return check


def missing_any(doc: Mapping[str, Any], groups: tuple[tuple[str, ...], ...]) -> list[FieldError]:
    """One error per ``require_any`` group with no non-empty path in ``doc``."""
    errors = []
    for group in groups:
        if not any(_present(doc, path) for path in group):
            # The event as a whole lacks an identity: no single field is to blame.
            errors.append(FieldError((), "at least one of " + ", ".join(group) + " is required"))
    return errors


def _present(doc: Any, path: str) -> bool:
    value = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return False
        value = value.get(part)
    return value not in (None, "", [], {})


def flatten_errors(tree: Mapping[Any, Any], prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Cerberus's nested ``errors`` dict as a flat, sorted list of FieldErrors."""
    out: list[FieldError] = []
    for key, entries in tree.items():
        path = (*prefix, key)
        for entry in entries:
            if isinstance(entry, dict):
                out.extend(flatten_errors(entry, path))
            else:
                out.append(FieldError(path, str(entry)))
    return sorted(out, key=lambda e: [str(p) for p in e.path])
