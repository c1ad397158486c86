"""Build the compiled core.  All metadata lives in pyproject.toml.

Switches (environment variables):
  SHMPARSE_DEBUG=1     -O0 -g, C asserts on
  SHMPARSE_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer
"""
import glob
import os
import sys

import numpy as np
import setuptools
from Cython.Build import cythonize
from setuptools import Extension, setup

# pyproject.toml's `license = "BSD-3-Clause"` (an SPDX expression) needs setuptools 77: older
# ones stop with a schema error that does not say so.  (pip's isolated builds fetch it.)
if int(setuptools.__version__.split(".")[0]) < 77:
    sys.exit(f"shmparse's build needs setuptools >= 77 (this is {setuptools.__version__}): "
             "pip install 'setuptools>=77'")

debug = os.environ.get("SHMPARSE_DEBUG") == "1"
sanitize = os.environ.get("SHMPARSE_SANITIZE") == "1"

compile_args = []
link_args = []
macros = []
if sys.platform != "win32":
    compile_args += ["-std=c99", "-pthread", "-Wall", "-Wno-unused-function"]
    link_args += ["-pthread"]
    if debug or sanitize:
        compile_args += ["-O0" if debug else "-O1", "-g", "-fno-omit-frame-pointer"]
        macros.append(("SHMPARSE_DEBUG", "1"))
    else:
        # -flto lets the converters in sp_convert.c inline into the row loop
        compile_args += ["-O3", "-flto"]
        link_args += ["-O3", "-flto"]
        macros.append(("NDEBUG", "1"))
    if sanitize:
        flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
        # Python's own CFLAGS bring -fwrapv, under which signed overflow is defined and
        # UBSan does not check it: turn it off here so that it is checked
        compile_args += flags + ["-fno-wrapv"]
        link_args += flags

ext = Extension(
    "shmparse._core",
    sources=["src/_core.pyx", "src/sp_engine.c", "src/sp_convert.c", "src/sp_float.c",
             "src/sp_parallel.c"],
    include_dirs=["src", np.get_include()],
    # a change to a header alone must rebuild the extension too
    depends=sorted(glob.glob("src/*.h")),
    define_macros=macros,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    # shm_open/shm_unlink live in librt before glibc 2.34
    libraries=["rt"] if sys.platform.startswith("linux") else [],
)

setup(
    ext_modules=cythonize(
        [ext],
        compiler_directives={"language_level": "3", "boundscheck": False,
                             "wraparound": False, "cdivision": True},
    ),
)
