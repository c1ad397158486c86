"""BGZF (htslib's blocked gzip): members found from their BSIZE fields without inflating,
cut into runs on member boundaries, each run inflated by the worker that parses it.

* :func:`bgzf_scan`, :func:`bgzf_members`, :func:`bgzf_runs` cut a file into runs;
* :func:`inflate_members` inflates a run, checking every member's CRC32 and ISIZE;
* :func:`bgzf_block` is exactly block ``k``'s text, cut at line starts.
"""
from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import (Any, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union)


from ._inflate import (BGZF_STD, Block, ByteInput, EOL, FCOMMENT, FEXTRA, FHCRC, FNAME,
                       InflateBackend, TRAILER, U16, bc_offset, byte_view, gzip_verdict,
                       line_start_after, resolve_backend)

__all__ = ['BGZFScan', 'NotBGZF', 'bgzf_block', 'bgzf_members', 'bgzf_runs', 'bgzf_scan',
           'bgzf_text_offsets', 'inflate_members']

# --------------------------------------------------------------------------- BGZF

class NotBGZF(ValueError):
    """The file is gzip but does not keep BGZF's layout; decode it as a gzip stream instead.

    Raised where the member layout (BSIZE) disagrees with the deflate data, or a member is
    plain gzip: the standard library would read such a file sequentially, which
    :func:`iter_blocks` does exactly.
    """


class BGZFScan(NamedTuple):
    """The member layout of a BGZF buffer, found without inflating.

    Attributes
    ----------
    members : array of int64
        Start offsets of the BGZF members found, in order.
    isizes : array of int64
        Each member's stored uncompressed size.
    end : int
        Where the BGZF part ends: ``len(buf)`` when ``complete``, else where the walk stopped.
    complete : bool
        The members (and zero padding) cover the whole buffer.
    error : BaseException or None
        When not ``complete``: the exception the standard library raises once it has read the
        members before ``end`` (the file is damaged there); None means the rest is readable
        gzip that is not BGZF, so the file must be read as a gzip stream (:func:`iter_blocks`).
    """
    members: "array[int]"
    isizes: "array[int]"
    end: int
    complete: bool
    error: Optional[BaseException]


def _bgzf_header(view: Any, p: int, n: int) -> Tuple[int, int, int]:
    """(status, data start, member end) of the member header at ``p``.

    status 0: a BGZF member lying inside the buffer; 1: a BGZF header whose member would end
    outside the buffer or inside its own header; 2: a complete gzip header without a BC
    subfield; 3: anything else (not gzip, truncated header, unknown method).
    """
    if p + 18 <= n:
        magic, xlen, bc, bsize = BGZF_STD.unpack_from(view, p)
        if magic == b"\x1f\x8b\x08\x04" and xlen == 6 and bc == b"BC\x02\x00":
            end = p + bsize + 1
            return (0 if p + 26 <= end <= n else 1), p + 18, end
    if p + 12 > n or view[p] != 0x1F or view[p + 1] != 0x8B or view[p + 2] != 8:
        return 3, 0, 0
    flag = view[p + 3]
    q = p + 10
    bsize = None
    if flag & FEXTRA:
        xlen = U16.unpack_from(view, q)[0]
        if q + 2 + xlen > n:
            return 3, 0, 0
        k = bc_offset(bytes(view[q + 2:q + 2 + xlen]))
        if k is not None:
            bsize = U16.unpack_from(view, q + 2 + k)[0]
        q += 2 + xlen
    for bit in (FNAME, FCOMMENT):
        if flag & bit:
            z = _find_zero(view, q, n)
            if z < 0:
                return 3, 0, 0
            q = z + 1
    if flag & FHCRC:
        q += 2
    if q > n:
        return 3, 0, 0
    if bsize is None:
        return 2, q, 0
    end = p + bsize + 1
    return (0 if q + 8 <= end <= n else 1), q, end


def _find_zero(view: Any, q: int, n: int) -> int:
    step = 4096
    while q < n:
        i = bytes(view[q:min(n, q + step)]).find(b"\0")
        if i >= 0:
            return q + i
        q += step
    return -1


def _skip_zeros(view: Any, p: int, n: int) -> int:
    while p < n and view[p] == 0:
        chunk = bytes(view[p:min(n, p + 65536)])
        p += len(chunk) - len(chunk.lstrip(b"\0"))
    return p


def bgzf_scan(buf: Any, *, name: Optional[str] = None) -> BGZFScan:
    """Walk the BSIZE fields of a BGZF buffer's member headers, without inflating.

    Each header is validated (gzip magic, deflate method, a ``BC`` subfield of length 2,
    a member inside the buffer).  Zero bytes after a member are skipped, as :mod:`gzip`
    does.  Where the walk cannot go on, the standard library's reading of the rest (from
    the last member found) decides: its exception becomes ``error``.

    Parameters
    ----------
    buf : bytes-like or mmap
        The whole compressed file.
    name : str, optional
        File name for messages.
    """
    with byte_view(buf) as view:
        return _scan(view, name)


def _scan(view: memoryview, name: Optional[str]) -> BGZFScan:
    n = len(view)
    members, isizes = array("q"), array("q")
    p = 0
    while p < n:
        status, _, end = _bgzf_header(view, p, n)
        if status != 0:
            break
        members.append(p)
        isizes.append(TRAILER.unpack_from(view, end - 8)[1])
        p = _skip_zeros(view, end, n)
    else:
        if members or n == 0:
            return BGZFScan(members, isizes, n, True, None)
        status = 3
    if status == 2:                      # a plain gzip member follows: read it as gzip does
        return BGZFScan(members, isizes, p, False, None)
    q = p if status == 1 or not members else members[-1]
    if q != p:                           # the last member's BSIZE may be what is wrong
        members.pop()
        isizes.pop()
    error = gzip_verdict(lambda: (ByteInput(view, 1 << 20, q), lambda: None), name)
    return BGZFScan(members, isizes, q, False, error)


def bgzf_members(buf: Any, *, name: Optional[str] = None) -> "array[int]":
    """Start offsets of the members of a BGZF buffer (see :func:`bgzf_scan`).

    Raises
    ------
    EOFError, gzip.BadGzipFile, zlib.error
        The file is damaged (truncated, garbage after the members...): the exception the
        standard library raises reading it, naming the file.
    NotBGZF
        The file is readable gzip but not all BGZF: read it with :func:`iter_blocks`.
    """
    scan = bgzf_scan(buf, name=name)
    if scan.error is not None:
        raise scan.error
    if not scan.complete:
        raise NotBGZF(f"{name or 'input'}: gzip member at byte {scan.end} is not a BGZF block")
    return scan.members


def bgzf_runs(members: Sequence[int], total_len: int, target_bytes: int) -> List[Tuple[int, int]]:
    """Cut the members into runs of about ``target_bytes`` compressed bytes.

    Each run ``(start, end)`` starts at a member and ends where the next run starts (the
    last at ``total_len``, e.g. ``BGZFScan.end``); every run holds at least one member.
    """
    if target_bytes < 1:
        raise ValueError("target_bytes must be positive")
    runs: List[Tuple[int, int]] = []
    i, n = 0, len(members)
    while i < n:
        start = members[i]
        j = max(bisect_left(members, start + target_bytes, i + 1), i + 1)
        runs.append((start, members[j] if j < n else total_len))
        i = j
    return runs


def _member_texts(buf: Any, start: int, end: int, backend: InflateBackend,
                  name: Optional[str]) -> Iterator[bytes]:
    """The text of each BGZF member in ``[start, end)``, CRC32 and ISIZE checked."""
    with byte_view(buf) as view:
        n = len(view)
        limit = min(end, n)
        p = start
        while p < limit:
            status, data, stop = _bgzf_header(view, p, n)
            text = _inflate_member(view, status, data, stop, backend)
            if text is None:
                verdict = gzip_verdict(lambda: (ByteInput(view, 1 << 20, p), lambda: None), name)
                if verdict is not None:
                    raise verdict
                raise NotBGZF(f"{name or 'input'}: the BGZF member at byte {p} does not keep "
                              "BGZF's layout")
            yield text
            p = _skip_zeros(view, stop, limit)


def _inflate_member(view: memoryview, status: int, data: int, stop: int,
                    backend: InflateBackend) -> Optional[bytes]:
    """A member's text, or None if it is damaged or its deflate data does not end at its trailer."""
    if status != 0:
        return None
    d = backend.decompressobj(-15)
    chunk = view[data:stop - 8]
    try:
        text = d.decompress(chunk)
    except backend.errors:
        return None
    finally:
        chunk.release()
    if not d.eof or d.unused_data:
        return None
    crc, isize = TRAILER.unpack_from(view, stop - 8)
    if backend.crc32(text) != crc or len(text) != isize:
        return None
    return text


def inflate_members(buf: Any, start: int, end: int, *, name: Optional[str] = None,
                    backend: Union[None, str, InflateBackend] = None) -> bytes:
    """Inflate the BGZF members starting in ``[start, end)`` (a run) and join their text.

    Each member is inflated as raw deflate and must end exactly at its trailer; its CRC32
    and ISIZE are checked.

    Raises
    ------
    zlib.error, gzip.BadGzipFile, EOFError
        A damaged member: what the standard library raises reading the file from it.
    NotBGZF
        The standard library reads on where BGZF's layout says the member ends: decode the
        file with :func:`iter_blocks`.
    """
    return b"".join(_member_texts(buf, start, end, resolve_backend(backend), name))


def bgzf_text_offsets(buf: Any, runs: Sequence[Tuple[int, int]]) -> List[int]:
    """Offset in the decompressed text where each run's text starts, then the text's length.

    Read from the members' stored ISIZE (no inflating); :func:`inflate_members` checks them.
    """
    offsets, total = [], 0
    with byte_view(buf) as view:
        n = len(view)
        for start, end in runs:
            offsets.append(total)
            p = start
            while p < min(end, n):
                status, _, stop = _bgzf_header(view, p, n)
                if status != 0:
                    break
                total += TRAILER.unpack_from(view, stop - 8)[1]
                p = _skip_zeros(view, stop, end)
    offsets.append(total)
    return offsets


def bgzf_block(buf: Any, runs: Sequence[Tuple[int, int]], k: int, *, text_start: int = 0,
               name: Optional[str] = None,
               backend: Union[None, str, InflateBackend] = None) -> Block:
    """Exactly the text of block ``k`` of a BGZF buffer cut into ``runs``.

    With ``T_k`` the offset where run ``k``'s text starts, block ``k`` starts at the first
    line start after the first line end any byte of which lies at or after ``T_k`` (block 0
    at 0), and ends where block ``k + 1`` starts (the last block at the end of the text).
    So a ``\\r`` ending run ``k - 1`` and a ``\\n`` starting run ``k`` are one line end, in
    block ``k - 1``; the worker inflates its run plus as many members of the following runs
    as the line running over its end needs.  A run lying inside one line gives an empty
    block (whose ``offset`` is then where the run's text ends).

    Parameters
    ----------
    buf : bytes-like or mmap
        The whole compressed file.
    runs : sequence of (start, end)
        From :func:`bgzf_runs`.
    k : int
        Which block.
    text_start : int
        ``T_k`` (from :func:`bgzf_text_offsets`), to report ``offset`` in the whole text.

    Returns
    -------
    Block
        ``data`` (a bytearray), ``offset``, and ``consumed`` = the end of run ``k``.
    """
    be = resolve_backend(backend)
    start, end = runs[k]
    text = bytearray()
    for piece in _member_texts(buf, start, end, be, name):
        text += piece
    run_len = len(text)
    later = _member_texts(buf, runs[k + 1][0] if k + 1 < len(runs) else end, runs[-1][1], be, name)

    def more() -> bool:
        for piece in later:
            if piece:
                text.extend(piece)
                return True
        return False

    try:
        if k == 0:
            first = 0
        elif EOL.search(text) is None:
            return Block(bytearray(), text_start + run_len, end)
        else:
            first = line_start_after(text, 0, more)
        last = line_start_after(text, run_len, more) if k + 1 < len(runs) else len(text)
    finally:
        later.close()
    del text[last:]
    del text[:first]
    return Block(text, text_start + first, end)
