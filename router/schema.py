"""The cerberus validator the router checks events with: cerberus, with JSON's types.

Shared by :mod:`router.validation` (the error messages) and
:mod:`router.compiler` (the fast predicates), which must agree exactly.
"""

from __future__ import annotations

import cerberus

__all__ = ["SchemaValidator"]


class SchemaValidator(cerberus.Validator):
    """Cerberus with JSON's notion of types: ``true`` is not an integer.

    Cerberus follows Python, where ``bool`` subclasses ``int``, so a stock
    validator accepts ``"quantity": true`` as an integer (and as a float). No
    vendor API does; every event schema is checked with this class instead.
    """

    types_mapping = {
        **cerberus.Validator.types_mapping,
        "integer": cerberus.TypeDefinition("integer", (int,), (bool,)),
        "float": cerberus.TypeDefinition("float", (float, int), (bool,)),
    }
