"""Write the seed corpus fuzz/corpus/ (reproducible: the files are committed too).

Each seed is the option header (see harness.py) followed by the text.  Seeds
named ``regress-*`` are reproducers of bugs the fuzzer found; they stay in the
corpus and tests/test_fuzz_corpus.py runs every file.

    python fuzz/make_corpus.py          # rewrite fuzz/corpus/
    python fuzz/make_corpus.py --check  # exit 1 if fuzz/corpus/ is not what this script writes
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.harness import encode_header  # noqa: E402

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

SEED_ROWS = (b"chr1\t10468\t85.7\t6\t1\n"
             b"chr1\t10470\t100\t12\t0\n"
             b"chrUn_KI270302v1\t7\t0\t0\t3\n"
             b"chrX\t2147483647\t-0.0\t0\t0\n")

# name -> (options by table name, text)
SEEDS: Dict[str, Tuple[Dict[str, str], bytes]] = {
    # --- typical tables ------------------------------------------------------------
    "seed-tsv": (dict(dtype="seed", delimiter="tab"), SEED_ROWS),
    "seed-tsv-threads-shared": (dict(dtype="seed", delimiter="tab", extras="both"), SEED_ROWS * 4),
    "seed-tsv-gzip": (dict(dtype="seed", delimiter="tab", form="gzip"), SEED_ROWS),
    "seed-tsv-list-maxrows": (dict(dtype="seed", delimiter="tab", form="list", max_rows="2"),
                              b"# header\n\n" + SEED_ROWS),
    "seed-tsv-truncating": (dict(dtype="seed", delimiter="tab"),
                            b"chrUn_KI270302v1_alt_extra\t1\t2\t3\t4\n"),
    "floats-ws": (dict(), b"1 2 3\n4 5 6\n-0 0.5 1e-3\n"),
    "floats-syntax": (dict(dtype="f8"), b".5 5. 1E5 -.5e-3 +inf -Infinity NaN nan -nan +1e+2\n"),
    "floats-f4-threads": (dict(dtype="f4", extras="threads"),
                          b"3.4028235e38 1.17549435e-38\n1e-45 -3.4028236e38\n0.1 0.2\n"),
    "floats-f2": (dict(dtype="f2"), b"65504 1e-7\n1_000 0.1\n6.1e-5 -0\n"),
    "floats-f2-overflow": (dict(dtype="f2"), b"1e6 1\n"),
    "floats-bigendian": (dict(dtype=">f8", ndmin="2"), b"1.5\n-2\n"),
    "floats-1000-digits": (dict(dtype="f8"), b"1." + b"0" * 1000 + b"1 " + b"9" * 1000 + b"\n"),
    "floats-huge-exponent": (dict(dtype="f8"),
                             b"1e999999999999 1e-999999999999 -1e400 4.9e-324 2.4703282292062328e-324\n"),
    "floats-halfway": (dict(dtype="f8"),
                       b"9007199254740993 9007199254740993.0000000001 "
                       b"1.00000000000000011102230246251565404236316680908203125\n"),
    "floats-hex-underscore": (dict(), b"0x10 1_0\n"),
    "floats-unicode-space": (dict(delimiter=",", encoding="utf-8"),
                             "\u30001\u3000,\u00a02\n".encode()),
    "csv-empty-field": (dict(delimiter=","), b"1,,2\n"),
    "csv-spaces": (dict(delimiter=","), b" 1 , 2 \n 3 ,4\n"),
    # --- ints ---------------------------------------------------------------------
    "int8-limits": (dict(dtype="i1"), b"127 -128\n+1 -0\n"),
    "int8-overflow": (dict(dtype="i1"), b"128 0\n"),
    "int16-limits": (dict(dtype="i2", delimiter=","), b"32767,-32768\n"),
    "int32-limits": (dict(dtype="i4"), b"2147483647 -2147483648\n2147483648 0\n"),
    "int64-limits": (dict(dtype="i8"), b"9223372036854775807 -9223372036854775808\n"),
    "int64-overflow": (dict(dtype="i8"), b"9223372036854775808\n"),
    "int-long-digits": (dict(dtype="i8"), b"0000000000000000000000000000000000000001 " + b"1" * 300 + b"\n"),
    "uint8-neg": (dict(dtype="u1"), b"255 -1\n"),
    "uint64-max": (dict(dtype="u8"), b"18446744073709551615 18446744073709551616\n"),
    "uint16-plus": (dict(dtype="u2"), b"+5 +0\n"),
    "int-as-float": (dict(dtype="i4"), b"1.0 2\n"),
    "bool": (dict(dtype="bool"), b"1 0\n10 -1\n"),
    "bool-bad": (dict(dtype="bool"), b"True\n"),
    "bigendian-i4": (dict(dtype=">i4", unpack="yes"), b"1 2\n3 4\n"),
    # --- strings ------------------------------------------------------------------
    "bytes-S3": (dict(dtype="S3"), b"ab cdef\n"),
    "bytes-S1-nonlatin": (dict(dtype="S1", encoding="utf-8"), "\u20ac \xe9\n".encode()),
    "unicode-U5": (dict(dtype="U5", encoding="utf-8"), "ab cd\xe9 \U0001f600x\n".encode()),
    "unicode-U1-latin1": (dict(dtype="U1", encoding="latin-1"), b"\xe9 \xff\n"),
    "unicode-bigendian": (dict(dtype=">U3", encoding="utf-8"), "ab \u00e9\u00e9\u00e9\u00e9\n".encode()),
    "struct-S3-i4": (dict(dtype="S3,i4", unpack="yes"), b"a 1\nbcdef 2\n"),
    "struct-nested": (dict(dtype="nested"), b"1 2 3 4\n5 6.5 7 8\n"),
    "struct-aligned": (dict(dtype="aligned"), b"1 2\n-3 4e2\n"),
    "struct-U2-u1-f2": (dict(dtype="U2,u1,f2", delimiter=";"), b"ab;255;1.5\ncd;0;65520\n"),
    "struct-usecols": (dict(dtype="i4,f8", usecols="1,0"), b"1.5 2\n3 4 5\n"),
    "complex-fallback": (dict(dtype="complex"), b"1+2j 3\n"),
    "object-fallback": (dict(dtype="object", delimiter=","), b"a,b\n"),
    # --- delimiters, comments, quotes ---------------------------------------------
    "csv-quoted": (dict(dtype="U5", delimiter=",", quotechar='"'),
                   b'"1",2\n"3, 4",5\n"a""b",c\n'),
    "csv-quoted-newline": (dict(dtype="U5", delimiter=",", quotechar='"'), b'"a\nb",c\nd,e\n'),
    "csv-quoted-crlf": (dict(dtype="U5", delimiter=",", quotechar='"', form="stringio"),
                        b'"a\r\nb",c\r\nd,e\r\n'),
    "csv-quote-unterminated": (dict(dtype="U5", delimiter=",", quotechar='"'), b'"abc,d\n1,2\n'),
    "csv-quote-after": (dict(dtype="U5", delimiter=",", quotechar='"'), b'"ab"cd,e\n'),
    "ws-quoted": (dict(dtype="U5", quotechar='"'), b'  "a b"  c\n"" \n'),
    "quoted-max-rows": (dict(dtype="U2,u1,f2", delimiter=",", quotechar='"', max_rows="2"),
                        b'"a\nb",1,2\n"c",2,3\n"d",3,4\n'),
    "comments-default": (dict(), b"# header\n1 2 # trailing\n\n3 4\n#\n"),
    "comments-multichar": (dict(comments="//"), b"1 2 // c\n// all\n3 4\n"),
    "comments-list": (dict(comments="#%"), b"1 2 % a\n3 4 # b\n"),
    "comments-none": (dict(comments="none"), b"1 2\n#3 4\n"),
    "comments-delim-clash": (dict(comments=",#", delimiter=","), b"1,2\n"),
    "comments-empty": (dict(comments="empty"), b"1 2\n"),
    "semicolon-usecols": (dict(delimiter=";", usecols="-2,0"), b"1;2;3\n4;5;6\n"),
    "space-delimiter-runs": (dict(delimiter="space"), b"1  2\n3 4\n"),
    "ws-runs": (dict(), b"  1 \t 2  \n\x0b3\x0c4\x1c\n"),
    "bytes-delimiter": (dict(delimiter="b,", comments="b#"), b"1,2 #c\n3,4\n"),
    # --- rows, columns, shapes ---------------------------------------------------------
    "skiprows": (dict(skiprows="2"), b"a b\nc d\n1 2\n"),
    "skiprows-all": (dict(skiprows="5"), b"1\n2\n"),
    "max-rows-blank": (dict(max_rows="2", form="textfile"), b"1 2\n\n# c\n3 4\n5 6\n"),
    "max-rows-zero": (dict(max_rows="0", form="generator"), b"1 2\n"),
    "max-rows-skip": (dict(max_rows="2", skiprows="1", form="bytesio"), b"x\n1\n\n2\n3\n"),
    "ncols-changed": (dict(extras="threads"), b"1 2\n3 4\n5 6 7\n"),
    "usecols-out-of-range": (dict(usecols="2"), b"1 2 3\n4 5\n"),
    "usecols-dup": (dict(usecols="0,0", dtype="i8"), b"1 2 3\n"),
    "usecols-empty": (dict(usecols="empty"), b"1 2\n"),
    "usecols-many": (dict(usecols="0,1,2,3,4", dtype="seed", delimiter="tab"), SEED_ROWS),
    "ndmin-0-single": (dict(), b"5\n"),
    "ndmin-2-column": (dict(ndmin="2", extras="shared"), b"1\n2\n3\n"),
    "ndmin-1-row": (dict(ndmin="1", unpack="yes"), b"1 2 3\n"),
    "empty": (dict(), b""),
    "empty-structured": (dict(dtype="seed", extras="shared"), b""),
    "only-comments": (dict(form="list"), b"# a\n# b\n"),
    "blank-lines": (dict(form="bytes-list"), b"\n\n1 2\n\n3 4\n\n"),
    # --- line ends, encodings, bytes ------------------------------------------------
    "crlf": (dict(extras="threads"), b"1 2\r\n3 4\r\n"),
    "cr-only": (dict(extras="threads"), b"1 2\r3 4\r"),
    "mixed-endings": (dict(form="stringio"), b"1 2\r\n3 4\r5 6\n7 8"),
    "no-final-newline": (dict(extras="both"), b"1 2\n3 4"),
    "bom-utf8-sig": (dict(encoding="utf-8-sig"), b"\xef\xbb\xbf1 2\n3 4\n"),
    "bom-utf8": (dict(encoding="utf-8", dtype="U5"), b"\xef\xbb\xbf1 2\n3 4\n"),
    "nul-bytes": (dict(), b"1 2\x00\n3\x00 4\n"),
    "nul-in-string": (dict(dtype="S3"), b"a\x00b c\n"),
    "invalid-utf8": (dict(encoding="utf-8"), b"1 2\n3 \xff\n"),
    "invalid-utf8-late": (dict(encoding="utf-8", max_rows="1"), b"1 2\n3 \xc3\n"),
    "invalid-ascii": (dict(encoding="ascii", form="textfile"), b"1 2\n\xe9 4\n"),
    "latin1-text": (dict(encoding="latin-1", dtype="U2,u1,f2"), b"\xe9\xe8 1 2\n"),
    "cp1252-text": (dict(encoding="cp1252", dtype="U5"), b"\x80\x93 a\n"),
    "bytes-encoding": (dict(encoding="bytes", form="bytes-list"), b"1 2\n"),
    "utf8-ws-split": (dict(encoding="utf-8"), "1\u20032\u30003\n".encode()),
    "embedded-cr-list": (dict(form="list", dtype="U5"), b"a\rb c\n"),
    "unicode-line-sep": (dict(form="list"), "1 2\u20283 4\x1c5 6\n".encode()),
}

# Reproducers of bugs the fuzzer found (see tests/test_fuzz_corpus.py).
REGRESSIONS: Dict[str, Tuple[Dict[str, str], bytes]] = {
    # numpy reads a path 16384 characters at a time and so decodes past max_rows: it raised
    # UnicodeDecodeError, shmparse returned the rows (it checked only the bytes it parsed)
    "regress-path-maxrows-invalid-after": (dict(max_rows="1", encoding="utf-8"), b"1 2\n3 \xc3\n"),
    "regress-path-maxrows-invalid-eof": (dict(max_rows="2", encoding="ascii"), b"1\n2\n\xc3"),
    "regress-path-maxrows-error-first": (dict(max_rows="5", encoding="utf-8"), b"x\n\xff\n"),
    # ... and gave the max_rows empty-line warning before that UnicodeDecodeError (numpy: none)
    "regress-path-maxrows-warning": (dict(skiprows="1", max_rows="2", extras="threads"),
                                     b"504\x04\x00x\n1\n\n2\n\xc6\n"),
    # (found on the fix above) with several comment strings numpy reads the path line by line:
    # it gives the empty-line warning for line 1 before the truncated byte at the end fails
    "regress-path-multicomment-warning-then-invalid": (
        dict(dtype="U5", delimiter=",", comments="#%", max_rows="5", usecols="-2,0", ndmin="1",
             encoding="utf-8-sig", form="gzip", extras="shared"), b"\n\xc3"),
    # ... and with the comments cut line by line when that text is parsed again for them
    "regress-path-multicomment-warning-replay": (dict(dtype="i2", comments=",#", skiprows="1",
                                                      max_rows="2", usecols="-2,0", form="gzip"),
                                                 b"-n\x01\x03\n#\n\xc3"),
    # numpy decodes lines of an iterable or a binary file one by one, when it reaches them:
    # the conversion error on line 1 comes first; shmparse decoded everything up front
    "regress-bytes-list-error-before-invalid": (dict(form="bytes-list", encoding="utf-8"),
                                                b"x\n\xff\n"),
    "regress-bytesio-error-before-invalid": (dict(form="bytesio", encoding="utf-8"), b"x\n\xff\n"),
    "regress-bytesio-cp1252-error-before-invalid": (dict(form="bytesio", encoding="cp1252"),
                                                    b"x\n\x81\n"),
    # (found on the fix above) ... a whole line: here the embedded \r error comes first,
    # mid-line, and numpy has decoded the rest of the line too
    "regress-bytesio-embedded-cr-then-invalid": (dict(form="bytesio", encoding="ascii"),
                                                 b"1 e+30\x00\x00\x00\x03\r\x001 \x8384"),
    # a codec the engine does not read natively (decoded by Python first): shmparse decoded the
    # whole file up front and raised where numpy, reading nothing (max_rows=0), returned
    "regress-path-cp1252-maxrows0": (dict(max_rows="0", encoding="cp1252"),
                                     b"\x00\x00\x00\x00x\xa7\x81\n"),
    "regress-path-cp1252-maxrows0-skip": (dict(max_rows="0", skiprows="1", encoding="cp1252"),
                                          b"1\n2\n\x81\n"),
    # numpy warns "overflow encountered in cast" for the float16 values it cast before an
    # error too; shmparse warned only when it returned
    "regress-f16-overflow-then-error": (dict(dtype="f2", form="gzip"),
                                        b"4073709551615\r\n3 4\r\n"),
    "regress-f16-overflow-then-error-struct": (dict(dtype="U2,u1,f2", form="list"),
                                               b"a 1 1e6\nb 2 x\n"),
    # UBSan: "applying zero offset to null pointer" in sp_parse: a quoted field left empty
    # before any quoted content had allocated the scratch buffer
    "regress-ub-empty-quoted-field": (dict(dtype="U5", quotechar='"'), b'"'),
    "regress-ub-empty-quoted-field-list": (dict(dtype="U5", quotechar='"', form="bytes-list",
                                                usecols="0,0", max_rows="5"), b'""\n'),
    # threads=2: the chunk in error replaced the merged result, and with it the float16
    # overflow flag of the chunks before it (no warning)
    "regress-threads-f16-overflow-then-error": (dict(dtype="f2", delimiter="tab", extras="threads"),
                                                b"11e6\n\x00 6\n"),
    # numpy's float16 converter is Python's float(), which does not strip 0x1C-0x1F
    # (str.isspace() does, and so does numpy for float32/64): shmparse stripped them
    "regress-f16-x1d-trailing": (dict(dtype="U2,u1,f2", delimiter=";", max_rows="5", ndmin="2",
                                      unpack="yes", encoding="cp1252", form="bz2"),
                                 b"\x00\x00\x00\x00\x00\x00ab;255;1.5\x1d"),
    "regress-f16-x1c-leading": (dict(dtype="f2", delimiter=","), b"\x1c1.5,1\n"),
    "f4-x1c-stripped": (dict(dtype="f4", delimiter=","), b"\x1c1.5,1\x1f\n"),
    # max_rows: numpy warns for an empty line before the row in error; shmparse's first-row
    # probe raised without giving the warning
    "regress-bytesio-warning-then-embedded-cr": (dict(delimiter="space", skiprows="1",
                                                      max_rows="2", form="bytesio"),
                                                 b"x\n\n1\r2\n"),
    "regress-stringio-warning-then-embedded-cr": (dict(skiprows="1", max_rows="2", form="stringio"),
                                              b"x\n\n1\r2\n"),
    # a numpy bug the fuzzer found: numpy's integer parser calls isdigit() on U+30AC (read
    # past glibc's table: 12412 here, a segfault for other code points).  The harness skips it.
    "numpy-bug-int-isdigit-skipped": (dict(dtype="i4", max_rows="2", usecols="0,0",
                                           extras="threads"), b" \xe3\x82\xac"),
    # a file holding only the first 2 bytes of a UTF-8 BOM, encoding="utf-8-sig": Python's
    # decoder drops them (numpy: an empty array); shmparse raised UnicodeDecodeError
    "regress-utf8sig-truncated-bom": (dict(dtype="U5", skiprows="1", unpack="yes",
                                           encoding="utf-8-sig", form="gzip"), b"\xef\xbb"),
    "regress-utf8sig-truncated-bom-path": (dict(encoding="utf-8-sig"), b"\xef"),
    # WRONG RESULT: a 20-23 digit number in a row the general path converts (a comment after
    # it, ...) wrapped around 2**64 in sp_digits: -92233720368547758081 read as -1.0
    "regress-digits-wraparound-comment": (dict(comments="//"),
                                          b"-92233720368547758081 2 // c\n// all\n3 4\n"),
    "regress-digits-wraparound-f4": (dict(dtype="f4"), b"18446744073709551617 2 # c\n"),
    "regress-digits-wraparound-multicomment": (dict(comments="#%", dtype="i4,f8"),
                                               b"1 92233720368547758082 % c\n"),
    "regress-bytes-list-skip-invalid": (dict(form="bytes-list", encoding="utf-8", max_rows="0",
                                             skiprows="2"), b"1\n\xff\n"),
}


def all_seeds() -> List[Tuple[str, bytes]]:
    out = []
    for table in (SEEDS, REGRESSIONS):
        for name, (opts, text) in table.items():
            out.append((name, encode_header(**opts) + text))
    return out


def main(argv: List[str]) -> int:
    seeds = all_seeds()
    for name, data in seeds:
        if len(data) >= 4096:
            raise SystemExit(f"seed {name} is {len(data)} bytes (keep seeds under 4 KB)")
    if "--check" in argv:
        have = {n: open(os.path.join(CORPUS, n), "rb").read() for n in os.listdir(CORPUS)}
        want = dict(seeds)
        if have != want:
            print("fuzz/corpus differs from make_corpus.py: run python fuzz/make_corpus.py")
            return 1
        return 0
    os.makedirs(CORPUS, exist_ok=True)
    wanted = {n for n, _ in seeds}
    for old in os.listdir(CORPUS):
        if old not in wanted:
            os.remove(os.path.join(CORPUS, old))
    for name, data in seeds:
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
