"""shmparse's version: the one place it is written.

pyproject.toml reads it at build time (``[tool.setuptools.dynamic]``, parsed without importing
the package, which needs the compiled core), so the installed metadata, ``shmparse.__version__``
and ``shmparse --version`` all show this string.  A release bumps it here and tags ``v<it>``
(the release workflow checks the tag against it)."""
__version__ = "0.1.0"
