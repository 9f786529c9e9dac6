"""Where a client's key is: the credential styles a source's ``auth`` option chooses.

``auth.style`` is one of :data:`CREDENTIAL_STYLES` (a named header, a Bearer
token, HTTP Basic auth, a query parameter, a field of the JSON body); a
source class declares its API's own with ``credential_style`` and the
``credential_*`` attributes, read here through :class:`CredentialDefaults`.
See ``docs/credentials.md``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = [
    "AUTH_STYLE_SCHEMA",
    "CREDENTIAL_STYLES",
    "CredentialDefaults",
    "credential_header",
    "credential_problem",
    "find_credential",
]


class CredentialDefaults(Protocol):
    """What a Source class says about its API's credential (``router.Source``)."""

    vendor: str | None
    credential_style: str
    credential_header: str | None
    credential_part: str
    credential_param: str | None
    credential_field: str | None


#: Where a client may put its key (``auth.style``): a named header, an
#: ``Authorization: Bearer`` token, HTTP Basic auth (the user or the password
#: part), a query parameter, or a field of the JSON body.
CREDENTIAL_STYLES = ("header", "bearer", "basic", "query", "body")

#: The ``auth`` keys the core reads to find the credential, besides ``keys`` and ``header``.
AUTH_STYLE_SCHEMA: Mapping[str, Any] = {
    "style": {"type": "string", "allowed": list(CREDENTIAL_STYLES)},
    "part": {"type": "string", "allowed": ["user", "password"]},
    "param": {"type": "string", "empty": False},
    "field": {"type": "string", "empty": False},
}

_AUTHORIZATION = "authorization"


def find_credential(
    cls: CredentialDefaults,
    auth: Mapping[str, Any],
    headers: Mapping[str, str],
    query: Mapping[str, str],
    body: Any = None,
) -> str | None:
    """The credential in a request where ``auth.style`` (else the class) says, or ``None``."""
    style = auth.get("style") or cls.credential_style
    if style == "query":
        name = auth.get("param") or cls.credential_param
        return query.get(name) if name else None
    if style == "body":
        return _body_field(body, auth.get("field") or cls.credential_field)
    header = credential_header(cls, auth)
    value = headers.get(header.lower()) if header else None
    if value is None:
        return None
    scheme, _, rest = value.partition(" ")
    scheme = scheme.lower()
    if style == "bearer":
        if scheme == "bearer":
            return rest.strip() or None
        # A bare key is taken as well (clients that predate the scheme send
        # one); a value with another scheme is not a bearer token.
        return None if rest else value
    if style == "basic" or scheme == "basic":
        if scheme != "basic":
            return None
        return _basic_part(rest.strip(), auth.get("part") or cls.credential_part)
    return value


def credential_header(cls: CredentialDefaults, auth: Mapping[str, Any]) -> str | None:
    """The header holding the credential under a source's ``auth`` option, if one does.

    ``bearer`` and ``basic`` use ``authorization`` unless ``auth.header`` says,
    or the class declares that style with its own header.
    """
    style = auth.get("style") or cls.credential_style
    if style in ("query", "body"):
        return None
    header = auth.get("header")
    if not header and (style == "header" or style == cls.credential_style):
        header = cls.credential_header
    if not header and style in ("bearer", "basic"):
        header = _AUTHORIZATION
    return header or None


def credential_problem(cls: CredentialDefaults, auth: Mapping[str, Any]) -> str | None:
    """What a source's ``auth`` option lacks to find the credential, or ``None``."""
    style = auth.get("style") or cls.credential_style
    if style == "header" and not (auth.get("header") or cls.credential_header):
        return f"{cls.vendor} has no standard credential header; set auth.header"
    if style == "query" and not (auth.get("param") or cls.credential_param):
        return "auth.style query needs auth.param: the query parameter holding the key"
    if style == "body" and not (auth.get("field") or cls.credential_field):
        return "auth.style body needs auth.field: the body field holding the key"
    return None


def _basic_part(token: str, part: str) -> str | None:
    """The user (or password) of an HTTP Basic ``token``; ``None`` if it is not one."""
    try:
        decoded = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon:
        return None
    return (user if part == "user" else password) or None


def _body_field(body: Any, path: str | None) -> str | None:
    """The string at a dotted ``path`` of a parsed JSON body, or ``None``."""
    if not path:
        return None
    value = body
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value if isinstance(value, str) and value else None
