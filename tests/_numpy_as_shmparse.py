"""pytest plugin: make numpy's own loadtxt tests call shmparse.loadtxt.

Loaded with ``-p tests._numpy_as_shmparse`` (see tests/test_numpy_suite.py)
before numpy's test modules are imported, so ``np.loadtxt`` captured at class
definition (``loadfunc = staticmethod(np.loadtxt)``) is ours too.
"""
import numpy as np

import shmparse

np.loadtxt = shmparse.loadtxt
