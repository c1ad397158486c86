"""A small BGZF writer for tests (SAM/BGZF specification, section 4.1).

Each member is a gzip member whose header carries FEXTRA with a ``BC`` subfield (SLEN 2)
holding BSIZE = member size - 1; members hold at most 64 KiB of compressed data, and a
file ends with the 28-byte empty member htslib writes as an end-of-file marker.
"""
from __future__ import annotations

import struct
import zlib
from typing import Iterable, List, Optional

#: Most uncompressed bytes per member, as bgzip uses.
MAX_INPUT = 0xFF00
EOF_MARKER = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def member(data: bytes, level: int = 6, *, extra_before: bytes = b"", fname: Optional[bytes] = None,
           mtime: int = 0) -> bytes:
    """One BGZF member holding ``data`` (``extra_before``: subfields placed before BC)."""
    if len(data) > MAX_INPUT:
        raise ValueError("a BGZF member holds at most 0xff00 bytes here")
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = comp.compress(data) + comp.flush()
    flag = 4 | (8 if fname is not None else 0)
    xlen = len(extra_before) + 6
    tail = (fname + b"\0") if fname is not None else b""
    size = 12 + xlen + len(tail) + len(body) + 8
    if size > 65536:    # incompressible: store it
        return member(data, 0, extra_before=extra_before, fname=fname, mtime=mtime)
    header = struct.pack("<BBBBIBBH", 0x1F, 0x8B, 8, flag, mtime, 0, 255, xlen)
    header += extra_before + b"BC" + struct.pack("<HH", 2, size - 1) + tail
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def compress(data: bytes, *, chunk: int = MAX_INPUT, eof: bool = True, level: int = 6) -> bytes:
    """``data`` as BGZF, cut into members of ``chunk`` uncompressed bytes."""
    return compress_pieces([data[i:i + chunk] for i in range(0, len(data), chunk)], eof=eof,
                           level=level)


def compress_pieces(pieces: Iterable[bytes], *, eof: bool = True, level: int = 6) -> bytes:
    """One member per piece (empty pieces give empty members), then the EOF marker."""
    out: List[bytes] = [member(p, level) for p in pieces]
    if eof:
        out.append(EOF_MARKER)
    return b"".join(out)
