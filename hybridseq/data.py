"""Data: read example pairs from files, turn them into tensors, and group them into padded batches.

Two kinds of example share one pipeline: token sequences (read as text, tokenized, mapped to ids
by a :class:`Vocab`) and real-valued vector sequences (read from JSON lines). Token tensors are
``(L,)`` long, vector tensors ``(L, D)`` float; :func:`collate` tells them apart by dtype. Masks are
bool with True = real position, everywhere.

A vector example may carry a third part, covariates (T, C): values known for each target step
(calendar features, planned promotions) that the decoder reads beside its previous output. Such
examples are ``(source, target, covariates)`` triples instead of pairs.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from hybridseq.vocab import BOS_ID, EOS_ID, PAD_ID

TEXT_SUFFIXES = (".tsv", ".txt")
VECTOR_SUFFIXES = (".jsonl",)
BUCKET_BATCHES = 100  # examples are length-sorted within windows of this many batches


class DataError(ValueError):
    """A problem in the user's data; messages start with ``path:line:`` if a line is at fault."""


# --------------------------------------------------------------------------- reading files


def iter_lines(stream: BinaryIO, where: str) -> Iterator[str]:
    """The lines of a UTF-8 byte stream as they are read, without line endings (``\\n`` or
    ``\\r\\n``); a byte-order mark at the start is dropped. Every file and stdin are read by
    these rules, so a line means the same wherever it comes from.

    Only ``\\n`` ends a line (not ``\\x0c``, ``\\u2028``, ... as ``str.splitlines`` would),
    so line numbers match what an editor shows.

    Raises:
        DataError: ``where:line: not valid UTF-8`` at the first line that is not.
    """
    for lineno, raw in enumerate(stream, start=1):
        if lineno == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{where}:{lineno}: not valid UTF-8") from None
        yield text.removesuffix("\n").removesuffix("\r")


def _open_error(path: str | Path, err: OSError) -> DataError:
    if isinstance(err, FileNotFoundError):
        return DataError(f"{path}: file not found")
    if isinstance(err, IsADirectoryError):
        return DataError(f"{path}: is a directory, expected a file")
    return DataError(f"{path}: cannot read file ({err.strerror or err})")


@contextlib.contextmanager
def input_lines(path: str | Path | None) -> Iterator[Iterator[str]]:
    """Open ``path`` (``None`` or ``"-"``: stdin) and give its lines as they are read, by the
    rules of :func:`iter_lines`; a file that cannot be opened is a DataError naming it."""
    if path is None or str(path) == "-":
        stream = getattr(sys.stdin, "buffer", None)  # a replaced sys.stdin may be text only
        if stream is None:
            stream = io.BytesIO(sys.stdin.read().encode("utf-8", "surrogateescape"))
        yield iter_lines(stream, "<stdin>")
        return
    try:
        stream = open(path, "rb")  # closed below, after the reads
    except OSError as err:
        raise _open_error(path, err) from None
    with stream:
        yield iter_lines(stream, str(path))


def _read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file without line endings; element ``i`` is line ``i + 1``."""
    try:
        with input_lines(path) as lines:
            return list(lines)
    except OSError as err:  # a read that fails after the open (a directory on some systems)
        raise _open_error(path, err) from None


def _side(text: str, side: str, path: str | Path, lineno: int) -> str:
    """One side of a text example, stripped; refuses a whitespace-only side."""
    text = text.strip()
    if not text:
        raise DataError(f"{path}:{lineno}: empty {side}")
    return text


def _require_examples(rows: list, where: str) -> list:
    if not rows:
        raise DataError(f"{where}: no examples found")
    return rows


def _tsv_rows(path: str | Path) -> list[tuple[str, tuple[str, str]]]:
    """``(path:line, (source, target))`` for each non-blank line of a TSV file."""
    rows = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 2:
            raise DataError(
                f"{path}:{lineno}: expected 2 tab-separated columns (source<TAB>target), "
                f"got {len(cols)}"
            )
        pair = (_side(cols[0], "source", path, lineno), _side(cols[1], "target", path, lineno))
        rows.append((f"{path}:{lineno}", pair))
    return _require_examples(rows, str(path))


def read_tsv(path: str | Path) -> list[tuple[str, str]]:
    """Read ``source<TAB>target`` lines; blank lines are skipped, each side is stripped."""
    return [pair for _, pair in _tsv_rows(path)]


def _parallel_rows(src_path: str | Path, tgt_path: str | Path) -> list[tuple[str, tuple[str, str]]]:
    """``(src_path:line, (source, target))`` for each line of two line-aligned files."""
    src_lines, tgt_lines = _read_lines(src_path), _read_lines(tgt_path)
    if len(src_lines) != len(tgt_lines):
        raise DataError(
            f"{src_path} has {len(src_lines)} lines but {tgt_path} has {len(tgt_lines)}; "
            "parallel files must hold one example per line, aligned"
        )
    rows = []
    for lineno, (src, tgt) in enumerate(zip(src_lines, tgt_lines, strict=True), start=1):
        pair = (_side(src, "source", src_path, lineno), _side(tgt, "target", tgt_path, lineno))
        rows.append((f"{src_path}:{lineno}", pair))
    return _require_examples(rows, f"{src_path} and {tgt_path}")


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> list[tuple[str, str]]:
    """Read two line-aligned text files: line ``n`` of each is example ``n``; sides stripped."""
    return [pair for _, pair in _parallel_rows(src_path, tgt_path)]


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _parse_record(line: str, where: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: invalid JSON: {err.msg} (column {err.colno})") from None
    except (ValueError, RecursionError) as err:  # an integer of > 4300 digits; deep nesting
        raise DataError(f"{where}: unreadable JSON ({type(err).__name__})") from None
    if not isinstance(record, dict):
        raise DataError(
            f'{where}: expected a JSON object {{"source": [...], "target": [...]}}, '
            f"got a {type(record).__name__}"
        )
    return record


def _check_rows(rows: list, side: str, where: str) -> None:
    """Every row a non-empty list of numbers, all of the first row's width."""
    width = len(rows[0]) if isinstance(rows[0], list) else None
    for r, row in enumerate(rows):
        if not isinstance(row, list) or not row:
            raise DataError(f"{where}: {side} row {r} must be a non-empty list of numbers")
        if len(row) != width:
            raise DataError(f"{where}: {side} row {r} has width {len(row)}, expected {width}")
        for c, x in enumerate(row):
            if not _is_number(x):
                raise DataError(f"{where}: {side} row {r}, column {c} is not a number: {x!r}")


def refuse_non_finite(
    check: np.ndarray, shown: np.ndarray, side: str, where: str, why: str
) -> None:
    """Raise at the first non-finite entry of ``check``, quoting the value from ``shown``."""
    bad = np.argwhere(~np.isfinite(check))
    if len(bad):
        r, c = bad[0]
        raise DataError(f"{where}: {side} row {r}, column {c} is {float(shown[r, c])}; {why}")


def _parse_side(record: dict, side: str, where: str) -> np.ndarray:
    """One side of a vector example as a finite float32 array of shape (L, D)."""
    if side not in record:
        raise DataError(f"{where}: missing key {side!r}")
    value = record[side]
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: {side} must be a non-empty list of rows of numbers")
    rows = [[x] for x in value] if all(_is_number(x) for x in value) else value
    _check_rows(rows, side, where)
    try:
        arr = np.array(rows, dtype=np.float64)
    except OverflowError:
        raise DataError(f"{where}: {side} holds an integer too large for a float") from None
    refuse_non_finite(arr, arr, side, where, "values must be finite")
    with np.errstate(over="ignore"):
        arr32 = arr.astype(np.float32)
    refuse_non_finite(arr32, arr, side, where, "too large for float32")
    return arr32


def read_vectors_jsonl(
    path: str | Path, *, src_dim: int | None = None, tgt_dim: int | None = None
) -> list[tuple[np.ndarray, ...]]:
    """Read ``{"source": [[f, ...], ...], "target": [[f, ...], ...]}`` objects, one per line,
    each with an optional ``"covariates": [[f, ...], ...]``, one row per target row.

    A flat list of numbers is a sequence of width-1 vectors. Every source must have width
    ``src_dim`` (every target ``tgt_dim``) when given, else the width seen on the first example;
    covariates have the width of the first line's, and every line has them or none does.
    Rows and columns in error messages count from 0, lines from 1. Blank lines are skipped.

    Returns:
        A list of ``(source, target)`` float32 arrays of shapes (S, D_src) and (T, D_tgt), or of
        ``(source, target, covariates)`` with covariates (T, C).
    """
    return [arrays for _, arrays in _jsonl_rows(path, src_dim, tgt_dim)]


def _jsonl_rows(
    path: str | Path, src_dim: int | None, tgt_dim: int | None
) -> list[tuple[str, tuple[np.ndarray, ...]]]:
    """``(path:line, arrays)`` for each non-blank line of a JSONL file of vector examples."""
    expected = {
        "source": _expected_width(src_dim, "src_dim"),
        "target": _expected_width(tgt_dim, "tgt_dim"),
        "covariates": None,
    }
    rows, first = [], None  # first: (line number, whether it has covariates)
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        record = _parse_record(line, where)
        sides = ["source", "target"] + (["covariates"] if "covariates" in record else [])
        first = first or (lineno, len(sides) == 3)
        if first[1] != (len(sides) == 3):
            has = "has" if first[1] else "has no"
            raise DataError(f'{where}: line {first[0]} {has} "covariates"; all lines or none')
        arrays = tuple(_parse_side(record, side, where) for side in sides)
        for side, arr in zip(sides, arrays, strict=True):
            if expected[side] is None:
                expected[side] = (arr.shape[1], f"as on line {lineno}")
            width, reason = expected[side]
            if arr.shape[1] != width:
                got = arr.shape[1]
                raise DataError(
                    f"{where}: {side} vectors have width {got}, expected {width} ({reason})"
                )
        if len(arrays) == 3 and len(arrays[2]) != len(arrays[1]):
            raise DataError(
                f"{where}: covariates have {len(arrays[2])} rows, the target {len(arrays[1])}; "
                "one row per target step"
            )
        rows.append((where, arrays))
    return _require_examples(rows, str(path))


def _expected_width(dim: int | None, name: str) -> tuple[int, str] | None:
    if dim is None:
        return None
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"{name} must be a positive integer, got {dim!r}")
    return dim, f"set by {name}"


def read_pairs(
    path_or_paths: str | Path | Sequence[str | Path],
    *,
    src_dim: int | None = None,
    tgt_dim: int | None = None,
) -> list[tuple[str, str]] | list[tuple[np.ndarray, ...]]:
    """Read examples, choosing the reader from the file extension.

    ``.tsv``/``.txt`` -> :func:`read_tsv`; ``.jsonl`` -> :func:`read_vectors_jsonl` (the only
    reader that uses ``src_dim``/``tgt_dim``); a pair of paths -> :func:`read_parallel`.
    """
    return read_pairs_located(path_or_paths, src_dim=src_dim, tgt_dim=tgt_dim)[0]


def read_pairs_located(
    path_or_paths: str | Path | Sequence[str | Path],
    *,
    src_dim: int | None = None,
    tgt_dim: int | None = None,
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """:func:`read_pairs`, and beside each example where it was read (``path:line``), for
    checks made after reading that must still name the line."""
    if isinstance(path_or_paths, (list, tuple)):
        if len(path_or_paths) != 2:
            raise DataError(
                f"expected two paths (source file, target file), got {len(path_or_paths)}"
            )
        rows = _parallel_rows(*path_or_paths)
    else:
        suffix = Path(path_or_paths).suffix.lower()
        if suffix in TEXT_SUFFIXES:
            rows = _tsv_rows(path_or_paths)
        elif suffix in VECTOR_SUFFIXES:
            rows = _jsonl_rows(path_or_paths, src_dim, tgt_dim)
        else:
            raise DataError(
                f"{path_or_paths}: unsupported file type {suffix or '(no extension)'!r}; "
                "supported: .tsv or .txt (source<TAB>target), .jsonl (vector sequences), "
                "or a pair of line-aligned text files"
            )
    return [pair for _, pair in rows], [where for where, _ in rows]


# --------------------------------------------------------------------------- tensors


def pair_lengths(items: Sequence[tuple[Tensor, ...]]) -> list[int]:
    """The length used for bucketing: the longer of source and target, per example."""
    return [max(len(item[0]), len(item[1])) for item in items]


# --------------------------------------------------------------------------- batches


@dataclass
class Batch:
    """A padded mini-batch. Masks are bool, True = real position; padding is PAD_ID or 0.0.

    Attributes:
        src: (B, S) long token ids, or (B, S, D_in) float vectors.
        src_mask: (B, S) bool.
        tgt_in: (B, T) long or (B, T, D_out) float; the decoder inputs (teacher forcing): BOS then
            the target for tokens, a zero vector then ``target[:-1]`` for vectors.
        tgt_out: (B, T) long or (B, T, D_out) float; what the decoder must predict: the target
            then EOS for tokens (T = longest target + 1), the target itself for vectors.
        tgt_mask: (B, T) bool; the same for ``tgt_in`` and ``tgt_out``.
        index: row ``b`` holds example ``index[b]`` of the dataset, to restore input order.
        tgt_cov: (B, T, C) float, the covariates known at each target step (padded with 0.0),
            or None for examples without covariates.
        src_ext: (B, S) long, for a copy model: each source token's id in the extended target
            vocabulary (``codec.Codec.copy_ids``; PAD_ID at padding); then ``tgt_in`` and
            ``tgt_out`` hold extended ids too. None otherwise.
    """

    src: Tensor
    src_mask: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    tgt_mask: Tensor
    index: list[int]
    tgt_cov: Tensor | None = None
    src_ext: Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        """A copy with every tensor on ``device``."""
        return Batch(
            src=self.src.to(device),
            src_mask=self.src_mask.to(device),
            tgt_in=self.tgt_in.to(device),
            tgt_out=self.tgt_out.to(device),
            tgt_mask=self.tgt_mask.to(device),
            index=list(self.index),
            tgt_cov=None if self.tgt_cov is None else self.tgt_cov.to(device),
            src_ext=None if self.src_ext is None else self.src_ext.to(device),
        )

    @property
    def n_tokens(self) -> int:
        """Number of real target positions (what a per-token loss is averaged over)."""
        return int(self.tgt_mask.sum())


def _is_tokens(seqs: Sequence[Tensor], side: str) -> bool:
    """True for (L,) long id tensors, False for (L, D) float vectors; refuses a mix."""
    kinds = set()
    for i, x in enumerate(seqs):
        if x.dtype == torch.long and x.dim() == 1:
            kinds.add(("tokens", None, x.dtype))
        elif x.is_floating_point() and x.dim() == 2:
            kinds.add(("vectors", x.shape[1], x.dtype))
        else:
            raise ValueError(
                f"{side} item {i} has dtype {x.dtype} and shape {tuple(x.shape)}; expected an "
                "(L,) long tensor of ids or an (L, D) float tensor of vectors"
            )
        if len(x) == 0:
            raise ValueError(f"{side} item {i} is empty; every sequence needs length >= 1")
    if len(kinds) > 1:
        raise ValueError(f"{side} items mix kinds, widths or dtypes: {sorted(map(str, kinds))}")
    return kinds.pop()[0] == "tokens"


def pad_batch(seqs: Sequence[Tensor], pad_value: float) -> tuple[Tensor, Tensor]:
    """Stack (L_i, ...) tensors into (B, L, ...) plus a (B, L) bool mask of real positions."""
    lengths = torch.tensor([len(x) for x in seqs])
    padded = pad_sequence(list(seqs), batch_first=True, padding_value=pad_value)
    mask = torch.arange(padded.shape[1])[None, :] < lengths[:, None]  # (B, L)
    return padded, mask


def _shift_target(tgts: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Decoder inputs and outputs, padded, with their shared (B, T) mask."""
    if _is_tokens(tgts, "target"):
        bos, eos = torch.tensor([BOS_ID]), torch.tensor([EOS_ID])
        tgt_in, mask = pad_batch([torch.cat([bos, t]) for t in tgts], PAD_ID)
        tgt_out, _ = pad_batch([torch.cat([t, eos]) for t in tgts], PAD_ID)
        return tgt_in, tgt_out, mask
    tgt_in, mask = pad_batch([torch.cat([torch.zeros_like(t[:1]), t[:-1]]) for t in tgts], 0.0)
    tgt_out, _ = pad_batch(tgts, 0.0)
    return tgt_in, tgt_out, mask


def collate(items: Sequence[tuple[Tensor, ...]], index: Sequence[int]) -> Batch:
    """Pad ``(source, target)`` pairs, or triples, into a :class:`Batch`.

    Args:
        items: pairs of (S_i,) long or (S_i, D_in) float sources and (T_i,) long or
            (T_i, D_out) float targets; each side is tokens or vectors by its dtype; triples
            add (T_i, C) float covariates, or for a copy model the (S_i,) long extended ids of
            the source (``Batch.src_ext``).
        index: the dataset position of each item, same length as ``items``.
    """
    if not items:
        raise ValueError("cannot collate an empty batch")
    if len(index) != len(items):
        raise ValueError(f"collate got {len(items)} items but {len(index)} indices")
    srcs = [item[0] for item in items]
    src, src_mask = pad_batch(srcs, PAD_ID if _is_tokens(srcs, "source") else 0.0)
    tgt_in, tgt_out, tgt_mask = _shift_target([item[1] for item in items])
    third = [item[2] for item in items] if len(items[0]) > 2 else None
    copies = third is not None and third[0].dtype == torch.long  # not float covariates
    tgt_cov = pad_batch(third, 0.0)[0] if third is not None and not copies else None
    src_ext = pad_batch(third, PAD_ID)[0] if copies else None
    idx = [int(i) for i in index]
    return Batch(src, src_mask, tgt_in, tgt_out, tgt_mask, idx, tgt_cov, src_ext)


def _sort_within_chunks(order: list[int], lengths: Sequence[int], chunk: int) -> list[int]:
    """Sort by length inside consecutive windows of ``order``; stable, so ties keep their order."""
    out: list[int] = []
    for start in range(0, len(order), chunk):
        out.extend(sorted(order[start : start + chunk], key=lambda i: lengths[i]))
    return out


def _split(
    order: list[int], lengths: Sequence[int], batch_size: int, max_tokens: int | None
) -> list[list[int]]:
    """Cut ``order`` into consecutive batches of at most ``batch_size`` and ``max_tokens``."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        grown = max(longest, lengths[i])
        too_many = max_tokens is not None and grown * (len(current) + 1) > max_tokens
        if current and (len(current) == batch_size or too_many):
            batches.append(current)
            current, grown = [], lengths[i]
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    return batches


def batch_indices(
    lengths: Sequence[int],
    batch_size: int,
    *,
    bucket: bool = True,
    shuffle: bool = False,
    seed: int = 0,
    max_tokens: int | None = None,
) -> list[list[int]]:
    """Group example indices ``0..len(lengths)-1`` into batches; each index appears once.

    With ``bucket``, examples are sorted by length within windows of ~100 batches so a batch holds
    similar lengths (less padding); the input need not be sorted. With ``shuffle``, examples are
    shuffled before bucketing (so equal lengths mix) and the batch order is shuffled after;
    everything random comes from ``random.Random(seed)``. ``max_tokens`` caps
    ``len(batch) * longest length`` per batch; an example longer than it gets a batch of its own.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if any(n < 0 for n in lengths):
        raise ValueError("lengths must be non-negative")
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    if shuffle:
        rng.shuffle(order)
    if bucket:
        order = _sort_within_chunks(order, lengths, batch_size * BUCKET_BATCHES)
    batches = _split(order, lengths, batch_size, max_tokens)
    if shuffle:
        rng.shuffle(batches)
    return batches


def pad_fraction(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """Share of positions in the padded batches that are padding (0.0 = none)."""
    real = sum(lengths[i] for batch in batches for i in batch)
    total = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches if batch)
    return 0.0 if total == 0 else 1.0 - real / total
