"""Every reader of user files, fed arbitrary bytes and lines: it parses them, or it raises the
project's own error (DataError) with a location (the file, and the line where one is at
fault); never another exception. TSV, parallel text, JSONL vectors, the forecasting CSV, and
the lines of a predict input."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hybridseq.data import DataError, input_lines, read_parallel, read_tsv, read_vectors_jsonl

SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
DIR = Path(tempfile.mkdtemp(prefix="readers-"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["source", "target", "covariates", "x"]), inner, max_size=3
        )
    ),
    max_leaves=16,
)
text_lines = st.text(
    alphabet=st.sampled_from(list('ab \t\r[]{},:"0123456789.eE-+') + ["\ufeff", "é", "\x0c"]),
    max_size=30,
)
hostile = st.one_of(
    st.integers(1_000, 100_000).map(lambda n: "[" * n + "]" * n),  # nesting past the stack
    st.integers(4_300, 5_000).map(lambda n: f'{{"source": [{"9" * n}], "target": [1]}}'),
)
lines = st.one_of(text_lines, json_values.map(json.dumps), hostile)
contents = st.one_of(
    st.binary(max_size=120),
    st.lists(lines, max_size=6).map(lambda ls: "\n".join(ls).encode()),
    st.tuples(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff"]), st.lists(lines, max_size=4)).map(
        lambda t: t[0] + "\n".join(t[1]).encode()
    ),
)


def _file(name: str, data: bytes) -> Path:
    path = DIR / name
    path.write_bytes(data)
    return path


def _located(err: DataError, path: Path) -> None:
    """The message starts with the file, and a line number, if given, is one of the file's."""
    msg = str(err)
    assert msg.startswith(str(path)), msg
    rest = msg[len(str(path)) :]
    if rest.startswith(":") and rest[1:].split(":")[0].isdigit():
        lineno = int(rest[1:].split(":")[0])
        assert 1 <= lineno <= path.read_bytes().count(b"\n") + 1, msg


@SETTINGS
@given(contents)
def test_tsv(data: bytes) -> None:
    path = _file("d.tsv", data)
    try:
        pairs = read_tsv(path)
    except DataError as err:
        _located(err, path)
        return
    assert pairs and all(s and t and "\t" not in s + t for s, t in pairs)


@SETTINGS
@given(contents, contents)
def test_parallel(src: bytes, tgt: bytes) -> None:
    src_path, tgt_path = _file("src.txt", src), _file("tgt.txt", tgt)
    try:
        pairs = read_parallel(src_path, tgt_path)
    except DataError as err:
        assert str(err).startswith((str(src_path), str(tgt_path))), str(err)
        return
    assert pairs


@SETTINGS
@given(contents)
@example(b"[" * 100_000 + b"]" * 100_000)
@example(b'{"source": [' + b"9" * 5_000 + b'], "target": [1]}')
def test_jsonl(data: bytes) -> None:
    path = _file("d.jsonl", data)
    try:
        examples = read_vectors_jsonl(path)
    except DataError as err:
        _located(err, path)
        return
    assert all(a.ndim == 2 and len(a) for ex in examples for a in ex)


cells = st.sampled_from(
    ["", "1", "2.5", "-3", "nan", "inf", "1e400", "x", "2020-01-01", "2020-13-40", "a b", '"']
    + ["2020-01-01T00:00:00+01:00", "2020-01-01T00:00:00Z", "99999-01-01", "1e20", "True"]
)
csv_tables = st.lists(st.lists(cells, min_size=1, max_size=4), max_size=6).map(
    lambda rows: "\n".join(",".join(r) for r in rows).encode()
)
headers = st.sampled_from(
    [b"id,time,target\n", b"time,x,y\n", b"target\n", b"", b"id,id,time,target\n"]
    + [b"id,time,target,target\n", b"time,time\n"]
)


@SETTINGS
@given(headers, st.one_of(csv_tables, st.binary(max_size=80)), st.booleans())
def test_series_csv(header: bytes, body: bytes, wide: bool) -> None:
    series = pytest.importorskip("hybridseq.series")
    path = _file("s.csv", header + body)
    try:
        out = series.read_series(path, series.Columns(wide=wide))
    except DataError as err:
        _located(err, path)
        return
    assert all(len(v) == len(out.times[k]) or out.covariate_names for k, v in out.values.items())


@SETTINGS
@given(contents)
def test_predict_input_lines(data: bytes) -> None:
    from hybridseq.cli import _vectors

    path = _file("in.txt", data)
    try:
        with input_lines(path) as read:
            for n, line in enumerate(read, start=1):
                assert "\n" not in line
                if line.strip():
                    try:
                        _vectors(line, f"{path}:{n}")
                    except DataError as err:
                        _located(err, path)
    except DataError as err:
        _located(err, path)
