"""One version everywhere: the installed metadata, ``shmparse.__version__`` and
``shmparse --version`` (all read from shmparse/_version.py; see pyproject.toml)."""
import importlib.metadata
import os
import re
import subprocess
import sys

import shmparse

# PEP 440's canonical public version (its appendix B)
PEP440 = re.compile(r"([1-9][0-9]*!)?(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*"
                    r"((a|b|rc)(0|[1-9][0-9]*))?(\.post(0|[1-9][0-9]*))?(\.dev(0|[1-9][0-9]*))?\Z")


def test_metadata_version_is_the_package_version():
    assert importlib.metadata.version("shmparse") == shmparse.__version__
    assert PEP440.match(shmparse.__version__), shmparse.__version__


def test_metadata_belongs_to_the_imported_package():
    """Where the installed files are listed (a wheel or sdist install, not an editable one),
    the metadata read above is that of the copy imported here."""
    dist = importlib.metadata.distribution("shmparse")
    listed = {str(f).replace(os.sep, "/") for f in dist.files or ()}
    if "shmparse/__init__.py" in listed:
        here = os.path.realpath(shmparse.__file__)
        assert os.path.realpath(dist.locate_file("shmparse/__init__.py")) == here
        assert any(f.startswith("shmparse/_core.") for f in listed), sorted(listed)
    else:   # an editable install: the metadata names no package file, only its finder
        assert not any(f.startswith("shmparse/") for f in listed), sorted(listed)


def test_command_version_is_the_metadata_version():
    want = f"shmparse {importlib.metadata.version('shmparse')}\n"
    r = subprocess.run([sys.executable, "-m", "shmparse", "--version"], capture_output=True,
                       text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, want), r.stderr
    # the installed `shmparse` command is the same entry point
    (ep,) = [e for e in importlib.metadata.distribution("shmparse").entry_points
             if (e.group, e.name) == ("console_scripts", "shmparse")]
    assert ep.value == "shmparse.__main__:run"
    script = os.path.join(os.path.dirname(sys.executable), "shmparse")
    if os.path.isfile(script):   # (a venv's bin/; elsewhere the entry point check above is it)
        r = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
        assert (r.returncode, r.stdout) == (0, want), r.stderr
