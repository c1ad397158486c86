"""shmparse: numpy.loadtxt, exact and fast, straight into ndarrays and shared memory."""
from ._loadtxt import loadtxt
from .errors import ParseError, ShmCapacityError, WorkerCrashedError
from .hdf5 import ConvertSummary, Progress, to_hdf5
from .pool import Loader, load_many
from .shm import SharedArray, SharedHandle, cleanup, list_segments, share

__version__ = "0.1.0"

__all__ = ["loadtxt", "load_many", "Loader", "to_hdf5", "ConvertSummary", "Progress",
           "ParseError", "ShmCapacityError", "WorkerCrashedError", "SharedArray",
           "SharedHandle", "share", "cleanup", "list_segments", "__version__"]
