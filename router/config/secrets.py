"""Which values of a config are credentials, and how a config object hides them.

The values found here are what :class:`router.log.Redactor` removes from
every log line and from ``router config``'s output, so both agree on what a
secret is.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from router.log import REDACTED

if TYPE_CHECKING:
    from router.yamlsource import Loaded

__all__ = ["SECRET_KEY", "SafeRepr", "config_secrets", "declared_secrets", "redact_url"]

#: Option names whose values are credentials: never logged. A plugin marks
#: other options as credentials in its schemas with ``"meta": {"secret": True}``.
SECRET_KEY = re.compile(
    r"(?i)(api_?key|authkey|auth_?token|(access|private|secret|signing)_?key|keys|tokens?"
    r"|secrets?|password|passwd|credentials?|client_ids)$"
)


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo replaced by ``[redacted]``."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return url
    return url.replace(f":{password}@", f":{REDACTED}@", 1) if password else url


class SafeRepr:
    """A dataclass ``repr`` that hides credentials: a config object may end up in a log.

    Fields named in ``_hidden`` (credentials, and option maps that hold them)
    show as ``[redacted]``; ``url`` fields lose their password.
    """

    __slots__ = ()
    _hidden: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if f.name in self._hidden and value:
                shown = REDACTED
            elif f.name == "url" and isinstance(value, str):
                shown = repr(redact_url(value))
            else:
                shown = repr(value)
            parts.append(f"{f.name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"


def config_secrets(loaded: Loaded) -> set[str]:
    """The credentials of a parsed config that can be found without its plugins' schemas.

    Values from ``${VAR}``, of options whose name matches :data:`SECRET_KEY`,
    and the passwords and credential query parameters of URLs.
    """
    return loaded.secrets | _secret_values(loaded.data) | _url_secrets(loaded.data)


def declared_secrets(doc: Any, schema: Mapping[str, Any]) -> set[str]:
    """Values in ``doc`` of the options ``schema`` marks ``"meta": {"secret": True}``."""
    found: set[str] = set()
    if not isinstance(doc, dict):
        return found
    for key, rules in schema.items():
        if key not in doc or not isinstance(rules, Mapping):
            continue
        meta = rules.get("meta")
        if isinstance(meta, Mapping) and meta.get("secret"):
            found.update(_strings(doc[key]))
        elif isinstance(rules.get("schema"), Mapping):
            value = doc[key]
            items = value if isinstance(value, list) else [value]
            for item in items:
                found |= declared_secrets(item, rules["schema"])
                if isinstance(rules["schema"].get("schema"), Mapping):
                    found |= declared_secrets(item, rules["schema"]["schema"])
    return found


def _url_secrets(doc: Any) -> set[str]:
    """Passwords and credential query parameters of every URL in the config (``redis.url``…)."""
    found: set[str] = set()
    for value in _strings(doc):
        if "://" not in value:
            continue
        try:
            url = urlsplit(value.strip())
            password = url.password
        except ValueError:
            continue
        if password:
            found |= {password, unquote(password)}
        found.update(v for k, v in parse_qsl(url.query) if v and SECRET_KEY.search(k))
    return found


def _strings(value: Any) -> list[str]:
    """Every string (and number, as text) in a parsed YAML document."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


def _secret_values(doc: Any) -> set[str]:
    found: set[str] = set()

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, secret or bool(SECRET_KEY.search(str(k))))
        elif isinstance(value, list):
            for v in value:
                walk(v, secret)
        elif secret:
            found.update(_strings(value))

    walk(doc, False)
    return found
