"""Error messages: numpy's wording plus the source and the physical line; strict mode; out=."""
import io

import numpy as np
import pytest

import shmparse
from shmparse import ParseError


def _write(tmp_path, text, name="data.tsv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_conversion_error_names_file_line_and_column(tmp_path):
    path = _write(tmp_path, "# header\n\n1\t2\n3\tx\n")
    with pytest.raises(ParseError) as ei:
        shmparse.loadtxt(path, delimiter="\t")
    e = ei.value
    assert isinstance(e, ValueError)
    assert str(e).startswith("could not convert string 'x' to float64 at row 1, column 2.")
    assert e.source == path and e.line == 4 and e.column == 2 and e.text == "x"
    assert f"[{path}, line 4]" in str(e)


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_line_numbers_follow_every_line_ending(tmp_path, ending):
    path = tmp_path / "d.txt"
    path.write_bytes(ending.join(["1", "2", "#", "", "bad", ""]).encode())
    with pytest.raises(ParseError) as ei:
        shmparse.loadtxt(str(path))
    assert ei.value.line == 5


def test_line_number_counts_quoted_newlines(tmp_path):
    path = _write(tmp_path, '"a\nb",1\n"c",zz\n')
    with pytest.raises(ParseError) as ei:
        shmparse.loadtxt(path, delimiter=",", quotechar='"', dtype="U3,i4")
    assert ei.value.line == 3


def test_list_input_line_is_the_item_number():
    with pytest.raises(ParseError) as ei:
        shmparse.loadtxt(["1 2", "3 4", "5"])
    assert ei.value.line == 3 and ei.value.source == "<list>"
    assert "the number of columns changed from 2 to 1 at row 3" in str(ei.value)


def test_file_object_source_is_its_name(tmp_path):
    path = _write(tmp_path, "1\nq\n")
    with open(path) as f, pytest.raises(ParseError) as ei:
        shmparse.loadtxt(f)
    assert ei.value.source == path and ei.value.line == 2


def test_strict_refuses_to_truncate(tmp_path):
    path = _write(tmp_path, "chr1\t5\nchrUn_KI270302v1\t7\n")
    dt = [("chr", "S10"), ("pos", "i4")]
    # numpy (and the default) truncate silently
    assert shmparse.loadtxt(path, dtype=dt, delimiter="\t")["chr"][1] == b"chrUn_KI27"
    with pytest.raises(ParseError) as ei:
        shmparse.loadtxt(path, dtype=dt, delimiter="\t", strict=True)
    e = ei.value
    assert e.line == 2 and e.column == 1 and e.text == "chrUn_KI270302v1"
    assert "16 characters" in str(e) and "|S10" in str(e)


def test_strict_unicode_counts_characters():
    assert shmparse.loadtxt(["éé"], dtype="U2", strict=True, encoding="utf-8") == "éé"
    with pytest.raises(ParseError):
        shmparse.loadtxt(["ééé"], dtype="U2", strict=True)


def test_invalid_utf8_is_unicode_decode_error(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"1\n2\n\xff\n")
    with pytest.raises(UnicodeDecodeError) as ei:
        shmparse.loadtxt(str(p), encoding="utf-8")
    assert "line 3" in str(ei.value)
    with pytest.raises(UnicodeDecodeError):
        np.loadtxt(str(p), encoding="utf-8")


def test_out_fills_caller_array(tmp_path):
    path = _write(tmp_path, "1 2\n3 4\n5 6\n")
    out = np.full((5, 2), -1.0)
    res = shmparse.loadtxt(path, out=out)
    assert np.shares_memory(res, out)
    np.testing.assert_array_equal(res, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(out[3:], -1.0)


def test_out_too_small_is_an_error_not_an_overflow(tmp_path):
    path = _write(tmp_path, "1 2\n3 4\n5 6\n")
    guard = np.full((4, 2), 7.0)
    with pytest.raises(ValueError, match="more rows than the destination"):
        shmparse.loadtxt(path, out=guard[:2])
    np.testing.assert_array_equal(guard[2:], 7.0)   # nothing written past the view


def test_out_wrong_dtype_rejected(tmp_path):
    path = _write(tmp_path, "1 2\n")
    with pytest.raises(ValueError, match="out= must be"):
        shmparse.loadtxt(path, out=np.zeros((2, 2), dtype=np.float32))


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="not found"):
        shmparse.loadtxt("/nonexistent/shmparse-test.txt")


def test_bad_fname_type():
    with pytest.raises(ValueError, match="fname must be a string"):
        shmparse.loadtxt(5)


def test_non_string_items():
    with pytest.raises(TypeError, match="non-string returned while reading data"):
        shmparse.loadtxt([1, 2])


def test_generator_max_rows_consumes_only_what_numpy_consumes():
    lines = iter(["1", "2", "3", "4"])
    np.testing.assert_array_equal(shmparse.loadtxt(lines, max_rows=2), [1, 2])
    assert next(lines) == "3"


def test_file_object_read_in_max_rows_chunks(tmp_path):
    path = _write(tmp_path, "1\n2\n3\n4\n5\n")
    with open(path) as f:
        a = shmparse.loadtxt(f, max_rows=2)
        b = shmparse.loadtxt(f, max_rows=2)
        c = shmparse.loadtxt(f)
    np.testing.assert_array_equal(np.concatenate([a, b, np.atleast_1d(c)]), [1, 2, 3, 4, 5])


def test_stringio_is_consumed():
    s = io.StringIO("1 2\n3 4\n")
    shmparse.loadtxt(s)
    assert s.read() == ""


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_threaded_prescan_utf8_edges(tmp_path, threads):
    # multi-byte characters everywhere, so chunk edges land inside them
    row = "é€𝄞 1\n"
    text = row * 200_000
    p = tmp_path / "u.txt"
    p.write_text(text, encoding="utf-8")
    res = shmparse.loadtxt(str(p), dtype="U3,i4", encoding="utf-8", threads=threads)
    assert len(res) == 200_000 and res[-1][0] == "é€𝄞"
    # one bad byte far into the file: found, with its line
    data = bytearray(text.encode("utf-8"))
    bad_line = 150_000
    data[len(row.encode()) * (bad_line - 1)] = 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(UnicodeDecodeError) as ei:
        shmparse.loadtxt(str(p), dtype="U3,i4", encoding="utf-8", threads=threads)
    assert f"line {bad_line}" in str(ei.value)
