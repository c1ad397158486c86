"""One version everywhere: the installed metadata, ``shmparse.__version__`` and
``shmparse --version`` (all read from shmparse/_version.py; see pyproject.toml)."""
import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request

import shmparse

# PEP 440's canonical public version (its appendix B)
PEP440 = re.compile(r"([1-9][0-9]*!)?(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*"
                    r"((a|b|rc)(0|[1-9][0-9]*))?(\.post(0|[1-9][0-9]*))?(\.dev(0|[1-9][0-9]*))?\Z")


def test_metadata_version_is_the_package_version():
    assert importlib.metadata.version("shmparse") == shmparse.__version__
    assert PEP440.match(shmparse.__version__), shmparse.__version__


def _owns_imported_copy(dist, here):
    """Whether installed metadata (a .dist-info with a RECORD, as an installer writes it;
    not an .egg-info a build leaves in a source tree) is that of the copy imported here."""
    if dist.read_text("RECORD") is None:
        return False
    files = {str(f).replace(os.sep, "/") for f in dist.files or ()}
    if "shmparse/__init__.py" in files:   # a wheel or sdist install lists the package's files
        return os.path.realpath(dist.locate_file("shmparse/__init__.py")) == here
    direct = json.loads(dist.read_text("direct_url.json") or "{}")   # an editable install
    if direct.get("dir_info", {}).get("editable"):
        url = urllib.parse.urlparse(direct["url"])
        tree = os.path.realpath(urllib.request.url2pathname(urllib.parse.unquote(url.path)))
        return here.startswith(tree + os.sep)
    return False


def test_metadata_belongs_to_the_imported_package():
    """Exactly one installed shmparse is the copy imported here, and its metadata carries its
    version (a source tree shadowing the installed package, or a stale install, would fail)."""
    here = os.path.realpath(shmparse.__file__)
    dists = list(importlib.metadata.distributions(name="shmparse"))
    owners = [d for d in dists if _owns_imported_copy(d, here)]
    assert len(owners) == 1, (here, [str(d.locate_file("")) for d in dists])
    assert owners[0].version == shmparse.__version__
    if "shmparse/__init__.py" in {str(f).replace(os.sep, "/") for f in owners[0].files}:
        # a non-editable install: the compiled core imported is the installed one too
        core = importlib.import_module("shmparse._core").__file__
        assert os.path.dirname(os.path.realpath(core)) == os.path.dirname(here)


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
