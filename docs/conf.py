"""Sphinx configuration of shmparse's documentation.

Build (warnings are errors, as in CI)::

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest

The second command runs every example of the documentation: the ``>>>`` blocks of the pages
and of the docstrings, and the shell sessions (``console-test`` blocks), each page in a fresh
temporary directory holding sample tables (``_ext/shmparse_docs.py``).
"""
import os
import sys
from importlib.util import find_spec

sys.path.insert(0, os.path.abspath("_ext"))

import shmparse  # noqa: E402  (the installed package: docs describe what pip installed)

project = "shmparse"
author = "the shmparse developers"
copyright = "the shmparse developers, BSD-3-Clause"
release = shmparse.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "numpydoc",
    "shmparse_docs",
]

exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_title = f"shmparse {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"benchmarks": [], "changelog": [], "howitworks": [], "install": []}
html_show_sourcelink = False
html_static_path = ["_static"]     # (benchmark.png, drawn by benchmarks/plot_benchmarks.py, too)
html_css_files = ["shmparse.css"]
pygments_style = "sphinx"

# -- API reference ------------------------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"            # the numpydoc sections say the types
autosummary_generate = False          # summary tables link to objects documented on the page
numpydoc_show_class_members = False   # members are listed by autodoc's :members:
numpydoc_xref_param_type = False
# every public docstring must be numpy style and document each parameter: a missing one
# is a warning, so the -W build fails
numpydoc_validation_checks = {"GL08", "PR01", "PR02", "PR10", "SS01", "RT02"}
numpydoc_validation_exclude = {
    r"\.__\w+__$",
    # made by shmparse, never by hand: their Attributes sections document them
    r"^shmparse\.(ParseError|ShmCapacityError|WorkerCrashedError|ConvertSummary|Progress)$",
    r"^shmparse\.pool\.LoaderFuture$",
}

# -- examples (sphinx-build -b doctest) ---------------------------------------------------
doctest_default_flags = (__import__("doctest").ELLIPSIS
                         | __import__("doctest").NORMALIZE_WHITESPACE
                         | __import__("doctest").DONT_ACCEPT_TRUE_FOR_1)
doctest_global_setup = """
from shmparse_docs import DocDir, sh
_docdir = DocDir()            # a fresh temporary directory with sample tables; the cwd
import numpy as np
import shmparse
SEED = [("chr", "S10"), ("pos", "<i4"), ("pct", "<f4"), ("c", "<i4"), ("t", "<i4")]
HAVE_DASK = DocDir.have("dask", "distributed", "fsspec")
HAVE_ZARR = HAVE_DASK and DocDir.have("zarr")
"""
doctest_global_cleanup = """
_docdir.close()               # back to the old cwd, the directory removed; fails on a segment left
"""

# without the [dask] extra: shmparse.dask's reference is still built (its imports mocked),
# and its examples are skipped (``:skipif: not HAVE_DASK``), saying so here
_missing = [m for m in ("dask", "distributed", "fsspec", "zarr") if find_spec(m) is None]
autodoc_mock_imports = list(_missing)
if _missing:
    print(f"shmparse docs: examples of the cluster path (user/dask.rst) are skipped: "
          f"{', '.join(_missing)} not installed (pip install 'shmparse[dask]')")
