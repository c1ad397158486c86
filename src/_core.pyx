# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""shmparse._core: the bridge between Python and the C engine in src/.

Turns Python arguments into an ``sp_options`` struct, runs the engine with the
GIL released, and hands back the engine's result as a dict.  Raising the
user-facing exception (with numpy's wording, source and line) is done in one
place on the Python side: ``shmparse._loadtxt._raise_for``.
"""
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE,
                             PyBUF_WRITABLE, PyBUF_C_CONTIGUOUS)
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memmove


cdef extern from "sp_engine.h" nogil:
    ctypedef unsigned char sp_byte
    int SP_LINES_UNIVERSAL, SP_LINES_NL, SP_LINES_UNIVSEG, SP_LINES_EXPLICIT
    int SP_CTRL_NONE, SP_DELIM_WS
    int SP_ENC_LATIN1, SP_ENC_UTF8
    int SP_KIND_INT, SP_KIND_UINT, SP_KIND_BOOL, SP_KIND_F16, SP_KIND_F32, SP_KIND_F64
    int SP_KIND_BYTES, SP_KIND_UCS4
    int SP_OK, SP_NEED_MORE, SP_ERR_CONVERT, SP_ERR_TRUNCATE, SP_ERR_NCOLS, SP_ERR_USECOL
    int SP_ERR_EMBEDDED_NL, SP_ERR_CAPACITY, SP_ERR_NOMEM, SP_ERR_TOO_BIG

    ctypedef struct sp_colspec:
        int kind
        int size
        int swap
        int64_t offset
        int64_t width
        int64_t imin
        int64_t imax
        uint64_t umax

    ctypedef struct sp_options:
        const sp_byte *buf
        int64_t len
        int lines
        const int64_t *seg_ends
        int64_t nseg
        int final
        int translate_cr
        int enc
        int delimiter
        int quote
        int comment
        const sp_byte *const *mc
        const int64_t *mc_len
        int nmc
        int strict
        int f16_overflow_error
        int int_via_float
        int64_t skiplines
        int64_t max_rows
        int64_t row_base
        int warn_empty
        int probe
        const sp_colspec *cols
        int64_t ncols
        int64_t col_stride
        const int64_t *usecols
        sp_byte *dest
        int64_t capacity
        int64_t row_size

    ctypedef struct sp_field_ref:
        int64_t row, field, out, nfields, offset, line
        sp_byte *text
        int64_t text_len

    ctypedef struct sp_result:
        int status
        int finished
        int f16_overflow
        int64_t int_via_float
        sp_field_ref vf
        int64_t rows
        int64_t first_nfields
        int64_t consumed
        int64_t seg_consumed
        int64_t empty_line
        int64_t plain_rows
        int64_t plain_end
        int64_t err_row
        int64_t err_field
        int64_t err_out
        int64_t err_nfields
        int64_t err_usecol
        int64_t err_offset
        int64_t err_line
        sp_byte *err_text
        int64_t err_text_len

    int sp_parse(const sp_options *o, sp_result *r)
    void sp_result_clear(sp_result *r)
    int64_t sp_count_lines(const sp_byte *buf, int64_t len, int lines)
    int64_t sp_utf8_invalid(const sp_byte *buf, int64_t len)
    int64_t sp_ascii_invalid(const sp_byte *buf, int64_t len)

cdef extern from "sp_parallel.h" nogil:
    int sp_parse_parallel(const sp_options *o, sp_result *r, int nthreads)
    void sp_prescan(const sp_byte *buf, int64_t len, int lines, int validate, int nthreads,
                    int64_t *nlines, int64_t *invalid)

cdef extern from "sp_convert.h" nogil:
    int sp_convert_init()


# Constants mirrored for the Python layer (single source of truth: the C headers).
LINES_UNIVERSAL = SP_LINES_UNIVERSAL
LINES_NL = SP_LINES_NL
LINES_UNIVSEG = SP_LINES_UNIVSEG
LINES_EXPLICIT = SP_LINES_EXPLICIT
CTRL_NONE = SP_CTRL_NONE
DELIM_WS = SP_DELIM_WS
ENC_LATIN1 = SP_ENC_LATIN1
ENC_UTF8 = SP_ENC_UTF8
KIND_INT = SP_KIND_INT
KIND_UINT = SP_KIND_UINT
KIND_BOOL = SP_KIND_BOOL
KIND_F16 = SP_KIND_F16
KIND_F32 = SP_KIND_F32
KIND_F64 = SP_KIND_F64
KIND_BYTES = SP_KIND_BYTES
KIND_UCS4 = SP_KIND_UCS4
OK = SP_OK
NEED_MORE = SP_NEED_MORE
ERR_CONVERT = SP_ERR_CONVERT
ERR_TRUNCATE = SP_ERR_TRUNCATE
ERR_NCOLS = SP_ERR_NCOLS
ERR_USECOL = SP_ERR_USECOL
ERR_EMBEDDED_NL = SP_ERR_EMBEDDED_NL
ERR_CAPACITY = SP_ERR_CAPACITY
ERR_NOMEM = SP_ERR_NOMEM
ERR_TOO_BIG = SP_ERR_TOO_BIG

cdef bint _initialised = False
cdef sp_byte _empty = 0


cdef class _InBuffer:
    """A read-only view of any bytes-like object, held for the duration of a parse."""
    cdef Py_buffer view
    cdef bint held

    def __cinit__(self, obj):
        self.held = False
        PyObject_GetBuffer(obj, &self.view, PyBUF_SIMPLE)
        self.held = True

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)

    cdef const sp_byte *ptr(self):
        if self.view.len == 0:
            return &_empty
        return <const sp_byte *>self.view.buf


cdef class _OutBuffer:
    """A writable, C-contiguous view of the destination (ndarray, segment, ...)."""
    cdef Py_buffer view
    cdef bint held

    def __cinit__(self, obj):
        self.held = False
        PyObject_GetBuffer(obj, &self.view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS)
        self.held = True

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)


def count_lines(buf, int lines):
    """Upper bound on the number of rows in ``buf`` (line terminators + 1)."""
    cdef _InBuffer b = _InBuffer(buf)
    cdef int64_t n
    cdef const sp_byte *p = b.ptr()
    cdef int64_t ln = b.view.len
    with nogil:
        n = sp_count_lines(p, ln, lines)
    return n


def prescan(buf, int lines, int validate=0, int threads=1):
    """(upper bound on rows, offset of the first invalid byte or -1) in one pass per thread.

    validate: 0 none, 1 utf-8, 2 ascii."""
    cdef _InBuffer b = _InBuffer(buf)
    cdef int64_t n = 0, inv = -1
    cdef const sp_byte *p = b.ptr()
    cdef int64_t ln = b.view.len
    with nogil:
        sp_prescan(p, ln, lines, validate, threads, &n, &inv)
    return n, inv


def first_invalid(buf, bint utf8):
    """Offset of the first byte the strict utf-8 (or ascii) codec rejects, or -1."""
    cdef _InBuffer b = _InBuffer(buf)
    cdef int64_t n
    cdef const sp_byte *p = b.ptr()
    cdef int64_t ln = b.view.len
    with nogil:
        if utf8:
            n = sp_utf8_invalid(p, ln)
        else:
            n = sp_ascii_invalid(p, ln)
    return n


def parse(buf, *, int lines=SP_LINES_UNIVERSAL, seg_ends=None, bint final=True,
          bint translate_cr=False, int enc=SP_ENC_LATIN1, int delimiter=SP_DELIM_WS,
          int quote=SP_CTRL_NONE, int comment=SP_CTRL_NONE, mc=(), bint strict=False,
          bint f16_error=False, bint int_via_float=False,
          int64_t skiplines=0, int64_t max_rows=-1, int64_t row_base=0,
          bint warn_empty=False, bint probe=False, cols=(), usecols=None,
          dest=None, int64_t capacity=0, int64_t row_size=0, int threads=1):
    """Run the engine once.  Returns a dict describing what happened (see sp_result)."""
    global _initialised
    if not _initialised:
        if sp_convert_init() != 0:
            raise MemoryError("shmparse: could not create the C locale")
        _initialised = True

    cdef _InBuffer inb = _InBuffer(buf)
    cdef _OutBuffer outb = None
    cdef sp_options o
    cdef sp_result r
    cdef Py_ssize_t i, n, nspec
    cdef int64_t stride = 0, slot_end
    cdef int64_t[::1] segs_view
    cdef int64_t[::1] use_view
    cdef int64_t dummy_use = 0
    cdef sp_colspec *cspec = NULL
    cdef const sp_byte **mcp = NULL
    cdef int64_t *mcl = NULL
    cdef list mc_keep = []

    memset(&o, 0, sizeof(o))
    memset(&r, 0, sizeof(r))
    o.buf = inb.ptr()
    o.len = inb.view.len
    o.lines = lines
    o.final = final
    o.translate_cr = translate_cr
    o.enc = enc
    o.delimiter = delimiter
    o.quote = quote
    o.comment = comment
    o.strict = strict
    o.f16_overflow_error = f16_error
    o.int_via_float = int_via_float
    o.skiplines = skiplines
    o.max_rows = max_rows
    o.row_base = row_base
    o.warn_empty = warn_empty
    o.probe = probe
    o.row_size = row_size
    o.capacity = capacity

    if lines == SP_LINES_EXPLICIT:
        segs_view = seg_ends
        o.nseg = segs_view.shape[0]
        if o.nseg:
            if segs_view[o.nseg - 1] != o.len:
                raise ValueError("internal error: line buffers do not cover the input")
            for i in range(o.nseg):
                if segs_view[i] < 0 or segs_view[i] > o.len or (i and segs_view[i] < segs_view[i - 1]):
                    raise ValueError("internal error: line buffer ends are not increasing")
            o.seg_ends = &segs_view[0]

    if usecols is not None:
        use_view = usecols
        o.usecols = &use_view[0] if use_view.shape[0] else &dummy_use

    if dest is not None:
        outb = _OutBuffer(dest)
        if row_size < 0 or capacity < 0 or (row_size and capacity > outb.view.len // row_size):
            raise ValueError("internal error: destination smaller than capacity * row_size")
        o.dest = <sp_byte *>outb.view.buf
    elif capacity != 0 and not probe:
        raise ValueError("internal error: capacity without a destination")

    try:
        n = len(cols)
        # a plain dtype's columns (``Plan.specs``): one spec, repeated every ``stride`` bytes
        stride = getattr(cols, "stride", 0) if n else 0
        nspec = 1 if stride > 0 else n
        if n:
            cspec = <sp_colspec *>malloc(nspec * sizeof(sp_colspec))
            if cspec == NULL:
                raise MemoryError()
            for i in range(nspec):
                c = cols[i]
                cspec[i].kind = c[0]
                cspec[i].size = c[1]
                cspec[i].swap = c[2]
                cspec[i].offset = c[3]
                cspec[i].width = c[4]
                cspec[i].imin = c[5]
                cspec[i].imax = c[6]
                cspec[i].umax = c[7]
                slot_end = cspec[i].offset + (cspec[i].size if cspec[i].kind < SP_KIND_BYTES else cspec[i].width * (4 if cspec[i].kind == SP_KIND_UCS4 else 1))
                if stride > 0:
                    slot_end += (n - 1) * stride   # the last column's slot
                if not probe and (cspec[i].offset < 0 or slot_end > row_size):
                    raise ValueError("internal error: column slot outside the record")
        o.cols = cspec
        o.ncols = n
        o.col_stride = stride if stride > 0 else 0
        if usecols is not None and use_view.shape[0] != n:
            raise ValueError("internal error: usecols and columns differ in length")

        n = len(mc)
        if n:
            mcp = <const sp_byte **>malloc(n * sizeof(sp_byte *))
            mcl = <int64_t *>malloc(n * sizeof(int64_t))
            if mcp == NULL or mcl == NULL:
                raise MemoryError()
            for i in range(n):
                b = bytes(mc[i])
                mc_keep.append(b)
                mcp[i] = <const sp_byte *><char *>b
                mcl[i] = len(b)
        o.mc = mcp
        o.mc_len = mcl
        o.nmc = <int>n

        with nogil:
            if threads > 1:
                sp_parse_parallel(&o, &r, threads)
            else:
                sp_parse(&o, &r)

        out = {
            "status": r.status, "finished": bool(r.finished), "rows": r.rows,
            "first_nfields": r.first_nfields, "consumed": r.consumed,
            "seg_consumed": r.seg_consumed, "empty_line": r.empty_line,
            "plain_rows": r.plain_rows, "plain_end": r.plain_end,
            "f16_overflow": bool(r.f16_overflow), "int_via_float": r.int_via_float,
        }
        if r.int_via_float:
            # numpy's conversion error for this field, should its warning be made an error
            out["via_float"] = dict(
                status=SP_ERR_CONVERT, err_row=r.vf.row, err_field=r.vf.field,
                err_out=r.vf.out, err_nfields=r.vf.nfields, err_offset=r.vf.offset,
                err_line=r.vf.line,
                err_text=(<char *>r.vf.text)[:r.vf.text_len] if r.vf.text != NULL else b"")
        if r.status != SP_OK and r.status != SP_NEED_MORE:
            out.update(err_row=r.err_row, err_field=r.err_field, err_out=r.err_out,
                       err_nfields=r.err_nfields, err_usecol=r.err_usecol,
                       err_offset=r.err_offset, err_line=r.err_line)
            if r.err_text != NULL:
                out["err_text"] = (<char *>r.err_text)[:r.err_text_len]
        return out
    finally:
        sp_result_clear(&r)
        free(cspec)
        free(mcp)
        free(mcl)


# -- POSIX shared-memory names (shmparse.shm builds on these) -----------------
cdef extern from "<sys/mman.h>" nogil:
    int shm_open(const char *name, int oflag, int mode)
    int shm_unlink(const char *name)

cdef extern from "<fcntl.h>" nogil:
    int O_RDONLY, O_RDWR, O_CREAT, O_EXCL
    int O_CLOEXEC

from libc.errno cimport errno
import os as _os


def _shm_error(int err, str name):
    return OSError(err, _os.strerror(err), name)


def shm_create(str name):
    """Create the segment ``/name`` (O_CREAT | O_EXCL, mode 0600, close-on-exec); returns its fd."""
    cdef bytes path = ("/" + name).encode("ascii")
    cdef const char *p = path
    cdef int fd
    with nogil:
        fd = shm_open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    if fd < 0:
        raise _shm_error(errno, name)
    return fd


def shm_attach(str name, bint writable):
    """Open the existing segment ``/name``; returns its fd."""
    cdef bytes path = ("/" + name).encode("ascii")
    cdef const char *p = path
    cdef int flags = (O_RDWR if writable else O_RDONLY) | O_CLOEXEC
    cdef int fd
    with nogil:
        fd = shm_open(p, flags, 0)
    if fd < 0:
        raise _shm_error(errno, name)
    return fd


def shm_remove(str name):
    """Remove the name ``/name``; mappings that exist stay valid until unmapped."""
    cdef bytes path = ("/" + name).encode("ascii")
    cdef const char *p = path
    cdef int rc
    with nogil:
        rc = shm_unlink(p)
    if rc < 0:
        raise _shm_error(errno, name)


# -- helpers for splitting one input across processes (shmparse.pool) ---------
def next_line_start(buf, int64_t pos):
    """First offset >= pos that starts a line (after \\n, \\r\\n or a lone \\r), or len(buf)."""
    cdef _InBuffer b = _InBuffer(buf)
    cdef const sp_byte *p = b.ptr()
    cdef int64_t n = b.view.len
    if pos < 0:
        pos = 0
    with nogil:
        while pos < n and p[pos] != 10 and p[pos] != 13:
            pos += 1
        if pos < n:
            if p[pos] == 13 and pos + 1 < n and p[pos + 1] == 10:
                pos += 1
            pos += 1
    return pos


def skip_lines(buf, int64_t count):
    """Offset just after the first ``count`` lines (universal newlines), or len(buf)."""
    cdef int64_t pos = 0, i = 0
    cdef int64_t n = len(memoryview(buf))
    while i < count and pos < n:
        pos = next_line_start(buf, pos)
        i += 1
    return pos


def move_rows(dest, int64_t dst, int64_t src, int64_t nbytes):
    """memmove inside one writable buffer, bounds-checked."""
    cdef _OutBuffer d = _OutBuffer(dest)
    if dst < 0 or src < 0 or nbytes < 0 or dst + nbytes > d.view.len or src + nbytes > d.view.len:
        raise ValueError("move_rows: range outside the buffer")
    cdef char *base = <char *>d.view.buf
    with nogil:
        memmove(base + dst, base + src, <size_t>nbytes)
