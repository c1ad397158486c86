"""The API reference (docs/api/) documents every public name.

The docs build itself (``sphinx-build -W``, run by .ci/run) fails on a public docstring that
is missing or leaves a parameter undocumented; this test fails when a public name is not in
the reference at all.  It reads the names without importing shmparse.dask (whose extra may
not be installed here).
"""
import ast
import importlib.util
import re
from pathlib import Path

import shmparse

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api"


def _documented():
    """Fully qualified names given to autodoc directives (``currentmodule`` applied)."""
    names = set()
    for page in sorted(API.glob("*.rst")):
        module = None
        for line in page.read_text().splitlines():
            m = re.match(r"\.\. (?:currentmodule|module|automodule):: (\S+)", line)
            if m:
                module = m.group(1)
                continue
            m = re.match(r"\.\. (?:autofunction|autoclass|autoexception|autodata|data):: (\S+)",
                         line)
            if m:
                name = m.group(1)
                names.add(name if name.startswith("shmparse") else f"{module}.{name}")
    return names


def _source(module):
    """The source file of ``module`` of the shmparse imported here (the installed copy when
    the tests run against an install), found without importing the module itself."""
    return Path(importlib.util.find_spec(module).origin)


def _all_of(path):
    """A module's ``__all__``, read from its source."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__"
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} has no __all__")


def test_every_public_name_is_in_the_api_reference():
    documented = _documented()
    wanted = {f"shmparse.{n}" for n in shmparse.__all__}
    wanted |= {f"shmparse.dask.{n}" for n in _all_of(_source("shmparse.dask"))}
    # shmparse.errors' classes are documented under the names users write (shmparse.X)
    wanted |= {f"shmparse.{n}" for n in _all_of(_source("shmparse.errors"))}
    missing = sorted(wanted - documented)
    assert not missing, f"public names missing from docs/api/: {missing}"

