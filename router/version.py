"""The router's version, in a module of its own so that any core module can read it.

``router.__version__`` is this value; a core module imports it from here,
since importing ``router`` itself loads the whole plugin API above it.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
