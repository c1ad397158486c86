"""What shmparse's documentation needs beyond Sphinx: executed shell sessions, the benchmark
chart when it has been drawn, and the sample tables every example reads.

``console-test``
    A shell session shown as a ``console`` block (``$ command`` lines and their output).
    ``sphinx-build -b doctest`` runs its commands, in order, as one bash script in the page's
    temporary directory, and compares what they print (stdout and stderr) with the output
    shown: ``...`` stands for any text.  Option ``:skipif: EXPR`` as for ``doctest``.

``benchmark-chart``
    A figure of ``_static/benchmark.png`` (written by ``benchmarks/plot_benchmarks.py``);
    where that file does not exist, a sentence saying how to draw it, so the build does not
    depend on a generated image.

``DocDir``
    Each page's examples run in a new temporary directory holding sample tables, removed
    afterwards; a shared-memory segment left behind by an example fails the doctest run.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from typing import Dict, List, Optional

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

SHM = "/dev/shm"


# -- the examples' working directory ---------------------------------------------------------
def write_table(path: str, rows: int, seed: int) -> None:
    """Seed-format methylation calls (chr, pos, pct, c, t), tab-separated, deterministic."""
    from shmparse._sample import write_seed_file   # the table `shmparse demo` converts
    write_seed_file(path, rows, seed=seed)


def _segments() -> Dict[str, int]:
    """shmparse segments in /dev/shm: name -> creator pid."""
    try:
        names = os.listdir(SHM)
    except OSError:
        return {}
    out = {}
    for n in names:
        if n.startswith("shmparse_"):
            try:
                out[n] = int(n.split("_")[1])
            except (IndexError, ValueError):
                out[n] = -1
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DocDir:
    """A page's examples' working directory: ``calls.tsv`` (1,000 rows), ``calls/`` (four
    tables of 2,000 rows), ``big.tsv`` (60,000 rows, 1.6 MB: large enough to be split
    across workers), and ``env``, extra environment variables for ``console-test``."""

    def __init__(self) -> None:
        self.old = os.getcwd()
        self.before = _segments()
        self.path = tempfile.mkdtemp(prefix="shmparse-docs-")
        self.env: Dict[str, str] = {}
        os.chdir(self.path)
        write_table("calls.tsv", 1000, seed=1)
        os.mkdir("calls")
        for i, name in enumerate("abcd"):
            write_table(os.path.join("calls", f"{name}.tsv"), 2000, seed=10 + i)
        write_table("big.tsv", 60_000, seed=2)

    @staticmethod
    def have(*modules: str) -> bool:
        """True when every module can be imported."""
        return all(find_spec(m) is not None for m in modules)

    def close(self) -> None:
        """Leave and remove the directory; raise if an example left a segment behind."""
        os.chdir(self.old)
        shutil.rmtree(self.path, ignore_errors=True)
        me = os.getpid()
        left = sorted(n for n, pid in _segments().items()
                      if n not in self.before and (pid == me or not _alive(pid)))
        if left:
            for n in left:   # (so the next page starts clean)
                try:
                    os.unlink(os.path.join(SHM, n))
                except OSError:
                    pass
            raise AssertionError(f"an example left shared-memory segments behind: {left}")


def sh(script: str, env: Optional[Dict[str, str]] = None) -> None:
    """Run ``script`` with bash in the current directory and print what it printed (stdout
    and stderr together); a non-zero status of the last command is printed too."""
    full = dict(os.environ)
    full["PATH"] = os.path.dirname(sys.executable) + os.pathsep + full.get("PATH", "")
    full.setdefault("COLUMNS", "80")
    if env:
        full.update(env)
    r = subprocess.run(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, env=full, text=True, timeout=300)
    out = r.stdout.rstrip("\n")
    if out:
        print(out)
    if r.returncode:
        print(f"[exit status {r.returncode}]")


# -- console-test -----------------------------------------------------------------------------
def split_session(lines: List[str]):
    """``(commands, output lines)`` of a console transcript: ``$ `` starts a command, a line
    ending in ``\\`` continues it, every other line is output."""
    commands: List[str] = []
    output: List[str] = []
    cont = False
    for line in lines:
        if cont:
            commands[-1] += "\n" + line
            cont = line.endswith("\\")
        elif line.startswith("$ "):
            commands.append(line[2:])
            cont = line.endswith("\\")
        elif line.strip():
            output.append(line)
    return commands, output


class ConsoleTest(SphinxDirective):
    has_content = True
    option_spec = {"skipif": directives.unchanged_required, "env": directives.unchanged}

    def run(self) -> List[nodes.Node]:
        lines = list(self.content)
        text = "\n".join(lines)
        commands, output = split_session(lines)
        if not commands:
            raise self.error("console-test: no '$ command' line")
        script = "\n".join(commands)
        env = self.options.get("env")
        call = f"sh({script!r}, {env})" if env else f"sh({script!r})"
        test = f">>> {call}\n" + "".join(line + "\n" for line in output)
        node = nodes.literal_block(text, text, testnodetype="doctest", groups=["default"])
        node["language"] = "console"
        node["test"] = test
        node["options"] = {}
        if "skipif" in self.options:
            node["skipif"] = self.options["skipif"]
        self.set_source_info(node)
        return [node]


# -- benchmark-chart --------------------------------------------------------------------------
class BenchmarkChart(SphinxDirective):
    required_arguments = 1            # the image, relative to the page
    has_content = True                # the caption

    def run(self) -> List[nodes.Node]:
        rel = self.arguments[0]
        docdir = os.path.dirname(self.env.doc2path(self.env.docname))
        path = os.path.join(docdir, rel)
        self.env.note_dependency(path)
        if os.path.exists(path):
            from docutils.statemachine import StringList
            text = [f".. figure:: {rel}", "   :alt: benchmark chart", ""]
            text += ["   " + line for line in self.content]
            holder = nodes.container()
            self.state.nested_parse(StringList(text, source=self.get_source_info()[0]),
                                    self.content_offset, holder)
            return holder.children
        para = nodes.paragraph()
        para += nodes.Text("The chart is drawn by ")
        para += nodes.literal(text="python benchmarks/plot_benchmarks.py")
        para += nodes.Text(", which writes ")
        para += nodes.literal(text=os.path.join("docs", os.path.normpath(rel)))
        para += nodes.Text("; this build was made without it.")
        return [para]


def setup(app):
    app.add_directive("console-test", ConsoleTest)
    app.add_directive("benchmark-chart", BenchmarkChart)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
