"""Per-event validation against the cerberus schemas plugins register.

Cerberus is the schema language and the source of every error message.
:class:`Validators` builds one checker per (vendor, event type) at startup;
``check`` returns the list of :class:`FieldError` (empty when valid).

Each schema is also compiled (:mod:`router.compiler`) into a fast predicate
that decides validity; cerberus runs only when the predicate says invalid,
to produce its exact error messages. Before the predicate, a msgspec type
of the same schema (:mod:`router.typedschema`) gets the first look: when
it accepts, the event is valid; when it refuses, the predicate decides. A
schema with rules the compiler does not support is checked by cerberus
alone; ``Validators.statistics()`` says which and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cerberus
import structlog

from router.compiler import compile_schema
from router.errors import FieldError
from router.schema import SchemaValidator
from router.typedschema import compile_typed

__all__ = [
    "SchemaValidator",
    "ValidatorSpec",
    "Validators",
    "ValidatorsStatistics",
    "flatten_errors",
]

log = structlog.get_logger()

#: The event type of a vendor's fallback spec, used for types with no spec of their own.
ANY_TYPE = "*"


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


@dataclass(frozen=True, slots=True)
class ValidatorsStatistics:
    """Which specs run compiled and which fell back to cerberus.

    :param compiled: (vendor, event type) of every spec checked by a compiled predicate.
    :param fallback: (vendor, event type) -> the rules that kept it on cerberus.
    :param disagreements: How many times cerberus found valid an event the
        compiled predicate rejected (a compiler bug; each is logged).
    :param typed: (vendor, event type) of the compiled specs that a msgspec
        type checks first.
    """

    compiled: tuple[tuple[str, str], ...]
    fallback: Mapping[tuple[str, str], frozenset[str]]
    disagreements: int
    typed: tuple[tuple[str, str], ...] = ()


class Validators:
    """All registered validators, by vendor and event type."""

    def __init__(self, specs: Iterable[ValidatorSpec]):
        self._checks: dict[tuple[str, str], Check] = {}
        self.specs: dict[tuple[str, str], ValidatorSpec] = {}
        self._fallback: dict[tuple[str, str], frozenset[str]] = {}
        self._typed: set[tuple[str, str]] = set()
        #: vendor -> event type -> the fused msgspec check of a typed spec with no
        #: ``require_any``: True is the whole verdict (see :meth:`check_all`).
        self._quick: dict[str, dict[str, Callable[[Any], bool]]] = {}
        self._disagreements = 0
        for spec in specs:
            key = (spec.vendor, spec.event_type)
            self.specs[key] = spec
            validator = SchemaValidator(spec.schema, allow_unknown=spec.allow_unknown)
            compiled = compile_schema(spec.schema, allow_unknown=spec.allow_unknown)
            if compiled.is_valid is None:
                self._fallback[key] = compiled.unsupported
                log.info(
                    "validation.compiler_fallback",
                    vendor=spec.vendor,
                    event_type=spec.event_type,
                    rules=sorted(compiled.unsupported),
                    reasons=list(compiled.reasons),
                )
                self._checks[key] = _cerberus_check(spec, validator)
            else:
                accepts = compile_typed(
                    spec.schema,
                    allow_unknown=spec.allow_unknown,
                    compiled=compiled,
                    expanded=validator.schema,
                ).accepts
                if accepts is not None:
                    self._typed.add(key)
                    if not spec.require_any:
                        self._quick.setdefault(spec.vendor, {})[spec.event_type] = accepts
                self._checks[key] = self._compiled_check(
                    spec, validator, compiled.is_valid, accepts
                )

    def statistics(self) -> ValidatorsStatistics:
        return ValidatorsStatistics(
            compiled=tuple(sorted(k for k in self.specs if k not in self._fallback)),
            fallback=dict(self._fallback),
            disagreements=self._disagreements,
            typed=tuple(sorted(self._typed)),
        )

    def vendors(self) -> set[str]:
        return {vendor for vendor, _ in self.specs}

    def event_types(self, vendor: str) -> list[str]:
        return sorted(t for v, t in self.specs if v == vendor and t != ANY_TYPE)

    def check(self, vendor: str, event_type: str | None, doc: Any) -> list[FieldError]:
        """The errors of one event; ``[]`` when it is valid.

        Uses the spec of ``event_type`` if there is one, else the vendor's
        ``"*"`` spec; a vendor with neither accepts any JSON object.
        """
        quick = self._quick.get(vendor)
        if quick is not None:
            accepts = self._quick_check(quick, vendor, event_type)
            if accepts is not None and accepts(doc):
                return []  # the usual verdict, in one call (see check_all)
        check = self._checks.get((vendor, event_type)) if event_type is not None else None
        if check is None:
            check = self._checks.get((vendor, ANY_TYPE))
        if check is None:
            return [] if isinstance(doc, dict) else [FieldError((), "must be a JSON object")]
        return check(doc)

    def check_all(
        self, vendor: str, event_type: Callable[[Any], str | None], docs: Sequence[Any]
    ) -> dict[int, list[FieldError]]:
        """The errors of each invalid event of ``docs``, by index: :meth:`check` of
        each, with its type from ``event_type`` (plugin code: what it raises is
        the event's error).

        One loop for a request's events: an event that its type's msgspec check
        accepts costs one call here, not four.
        """
        quick = self._quick.get(vendor) or {}
        failed: dict[int, list[FieldError]] = {}
        for i, doc in enumerate(docs):
            try:
                kind = event_type(doc)
            except Exception as exc:
                failed[i] = [FieldError((), f"{vendor} plugin failed: {exc!r}")]
                continue
            accepts = quick.get(kind) if kind is not None else None
            if accepts is None:  # a type without a quick check of its own, or none
                accepts = self._quick_check(quick, vendor, kind)
            if accepts is not None and accepts(doc):
                continue
            errors = self.check(vendor, kind, doc)
            if errors:
                failed[i] = errors
        return failed

    def _quick_check(
        self, quick: Mapping[str, Callable[[Any], bool]], vendor: str, event_type: str | None
    ) -> Callable[[Any], bool] | None:
        """The quick check :meth:`check` would use for ``event_type``: its own, or the
        ``"*"`` spec's when the type has no spec at all; None if that one has none."""
        if event_type is not None:
            accepts = quick.get(event_type)
            if accepts is not None or (vendor, event_type) in self._checks:
                return accepts
        return quick.get(ANY_TYPE)

    def _compiled_check(
        self,
        spec: ValidatorSpec,
        validator: cerberus.Validator,
        is_valid: Callable[[Any], bool],
        accepts: Callable[[Any], bool] | None = None,
    ) -> Check:
        require_any = _require_any(spec.require_any)

        def check(doc: Any) -> list[FieldError]:
            if not isinstance(doc, dict):
                return [FieldError((), "must be a JSON object")]
            # The msgspec type may refuse a valid event (never accept an
            # invalid one): then the predicate decides.
            if (accepts is not None and accepts(doc)) or is_valid(doc):
                return require_any(doc)
            # Invalid: cerberus says why, in its own words.
            if not validator.validate(doc, normalize=False):
                return flatten_errors(validator.errors)
            self._disagreements += 1
            log.error(
                "validation.compiler_disagrees", vendor=spec.vendor, event_type=spec.event_type
            )
            return require_any(doc)

        return check


def _cerberus_check(spec: ValidatorSpec, validator: cerberus.Validator) -> Check:
    require_any = _require_any(spec.require_any)

    def check(doc: Any) -> list[FieldError]:
        if not isinstance(doc, dict):
            return [FieldError((), "must be a JSON object")]
        if not validator.validate(doc, normalize=False):
            return flatten_errors(validator.errors)
        return require_any(doc)

    return check


def missing_any(doc: Mapping[str, Any], groups: tuple[tuple[str, ...], ...]) -> list[FieldError]:
    """One error per ``require_any`` group with no non-empty path in ``doc``."""
    return _require_any(groups)(doc)


def _require_any(groups: tuple[tuple[str, ...], ...]) -> Callable[[Any], list[FieldError]]:
    """The ``require_any`` check for fixed ``groups``, with the paths split once.

    The event as a whole lacks an identity: no single field is to blame, so
    each error has an empty path.
    """
    if not groups:
        return lambda doc: []
    split = [(group, tuple(tuple(path.split(".")) for path in group), ()) for group in groups]

    def check(doc: Any) -> list[FieldError]:
        errors = []
        for group, paths, field in split:
            for parts in paths:
                value = doc
                for part in parts:
                    if not isinstance(value, dict):
                        value = None
                        break
                    value = value.get(part)
                if value not in _ABSENT:
                    break
            else:
                errors.append(
                    FieldError(field, "at least one of " + ", ".join(group) + " is required")
                )
        return errors

    return check


_ABSENT = (None, "", [], {})


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
