# Type stubs for the compiled bridge (src/_core.pyx).  C widths: int64_t for
# sizes/offsets/rows, int for enums and flags.
from typing import Any, Dict, Optional, Sequence, Tuple

LINES_UNIVERSAL: int
LINES_NL: int
LINES_UNIVSEG: int
LINES_EXPLICIT: int
CTRL_NONE: int
DELIM_WS: int
ENC_LATIN1: int
ENC_UTF8: int
KIND_INT: int
KIND_UINT: int
KIND_BOOL: int
KIND_F16: int
KIND_F32: int
KIND_F64: int
KIND_BYTES: int
KIND_UCS4: int
OK: int
NEED_MORE: int
ERR_CONVERT: int
ERR_TRUNCATE: int
ERR_NCOLS: int
ERR_USECOL: int
ERR_EMBEDDED_NL: int
ERR_CAPACITY: int
ERR_NOMEM: int
ERR_TOO_BIG: int

def count_lines(buf: Any, lines: int) -> int: ...
def prescan(buf: Any, lines: int, validate: int = ..., threads: int = ...) -> Tuple[int, int]: ...
def first_invalid(buf: Any, utf8: bool) -> int: ...
def parse(buf: Any, *, lines: int = ..., seg_ends: Any = ..., final: bool = ...,
          translate_cr: bool = ..., enc: int = ..., delimiter: int = ..., quote: int = ...,
          comment: int = ..., mc: Sequence[bytes] = ..., strict: bool = ...,
          f16_error: bool = ..., int_via_float: bool = ..., skiplines: int = ...,
          max_rows: int = ..., row_base: int = ..., warn_empty: bool = ..., probe: bool = ...,
          cols: Sequence[Tuple[int, ...]] = ..., usecols: Optional[Any] = ..., dest: Any = ...,
          capacity: int = ..., row_size: int = ..., threads: int = ...) -> Dict[str, Any]: ...
def shm_create(name: str) -> int: ...
def shm_attach(name: str, writable: bool) -> int: ...
def shm_remove(name: str) -> None: ...
def next_line_start(buf: Any, pos: int) -> int: ...
def skip_lines(buf: Any, count: int) -> int: ...
def move_rows(dest: Any, dst: int, src: int, nbytes: int) -> None: ...
