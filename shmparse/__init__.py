"""shmparse: numpy.loadtxt, exact and fast, straight into ndarrays and shared memory.

The names below are imported on first use (PEP 562), so that ``import shmparse`` stays cheap
and the ``shmparse`` command can configure the process before numpy is loaded."""
import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any
from typing import List as _List

from ._version import __version__

# public name -> the submodule that defines it
_EXPORTS = {
    "loadtxt": "_loadtxt",
    "ParseError": "errors", "ShmCapacityError": "errors", "WorkerCrashedError": "errors",
    "to_hdf5": "hdf5", "ConvertSummary": "hdf5", "Progress": "hdf5",
    "Loader": "pool", "load_many": "pool",
    "SharedArray": "shm", "SharedHandle": "shm", "cleanup": "shm", "list_segments": "shm",
    "share": "shm",
}
_SUBMODULES = {"errors", "hdf5", "pool", "shm"}

__all__ = ["loadtxt", "load_many", "Loader", "to_hdf5", "ConvertSummary", "Progress",
           "ParseError", "ShmCapacityError", "WorkerCrashedError", "SharedArray",
           "SharedHandle", "share", "cleanup", "list_segments", "__version__"]

if _TYPE_CHECKING:   # what type checkers and IDEs see
    from ._loadtxt import loadtxt
    from .errors import ParseError, ShmCapacityError, WorkerCrashedError
    from .hdf5 import ConvertSummary, Progress, to_hdf5
    from .pool import Loader, load_many
    from .shm import SharedArray, SharedHandle, cleanup, list_segments, share


def __getattr__(name: str) -> _Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(_importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> _List[str]:
    return sorted({n for n in globals() if not n.startswith("_")} | set(__all__) | _SUBMODULES)
