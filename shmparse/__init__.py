"""shmparse: numpy.loadtxt, exact and fast, straight into ndarrays and shared memory."""
from ._loadtxt import loadtxt
from .errors import ParseError

__version__ = "0.1.0"

__all__ = ["loadtxt", "ParseError", "__version__"]
