"""Synthetic seq2seq data: token tasks (copy, copy_rare, reverse, sort, add) and vector
forecasting tasks.

Every generator is deterministic given ``seed``: it draws from its own ``random.Random`` or
``numpy.random.Generator`` and never touches global random state, so a benchmark run can be
repeated exactly.

Token pairs are ``(source, target)`` strings of whitespace-separated symbols, so they read back
through a plain whitespace tokenizer. Vector pairs are ``(source, target)`` float32 arrays of
shape ``(src_len, dim)`` and ``(tgt_len, dim)``: the target continues the source in time.
"""

from __future__ import annotations

import json
import math
import random
import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TOKEN_TASKS = ("copy", "copy_rare", "reverse", "sort", "add")
RARE_SHARE = 0.25  # copy_rare: the share of positions that hold a rare symbol
VECTOR_TASKS = ("sines", "ar")

# Steps simulated and thrown away before an AR series is kept, so it starts near stationarity.
_AR_BURN_IN = 100


def symbol(index: int) -> str:
    """Name of the ``index``-th symbol of the copy/reverse/sort vocabularies.

    Symbols 0-25 are the letters ``a``..``z`` (readable in small examples); from 26 on they are
    ``s26``, ``s27``, ... so every symbol stays a single whitespace-free token.
    """
    if index < 0:
        raise ValueError(f"symbol index must be >= 0, got {index}")
    if index < 26:
        return string.ascii_lowercase[index]
    return f"s{index}"


def make_token_pairs(
    task: str,
    n: int,
    *,
    min_len: int = 5,
    max_len: int = 20,
    vocab: int = 20,
    seed: int = 0,
) -> list[tuple[str, str]]:
    """Generate ``n`` (source, target) pairs of a token task.

    Args:
        task: one of ``TOKEN_TASKS``. ``copy``: target = source; ``copy_rare``: target =
            source, where about ``RARE_SHARE`` of the positions (at least one per pair) hold a
            rare symbol that occurs once in all of the pairs (``rare_symbol``: no other seed
            or pair has it), so a vocabulary with ``min_freq`` >= 2 knows none of them and
            only copying can write them; ``reverse``: target = reversed source; ``sort``:
            target = source sorted by symbol index (not string order);
            ``add``: source ``"3 4 7 + 8 9"``, target the digits of the sum, ``"4 3 6"``.
        n: number of pairs.
        min_len, max_len: inclusive bounds of the source length (uniform); for ``add``, of the
            number of digits of each operand.
        vocab: number of distinct symbols (see ``symbol``); ignored by ``add`` (digits 0-9).
        seed: seed of the private random generator.
    """
    _check_task(task, TOKEN_TASKS)
    _check_at_least("n", n, 1)
    _check_at_least("min_len", min_len, 1)
    if max_len < min_len:
        raise ValueError(f"max_len must be >= min_len, got max_len={max_len}, min_len={min_len}")
    if task != "add":
        _check_at_least("vocab", vocab, 2)
    rng = random.Random(seed)
    if task == "add":
        return [_addition_pair(rng, min_len, max_len) for _ in range(n)]
    if task == "copy_rare":
        return _rare_copy_pairs(rng, n, min_len, max_len, vocab, seed)
    pairs = []
    for _ in range(n):
        source = [rng.randrange(vocab) for _ in range(rng.randint(min_len, max_len))]
        if task == "copy":
            target = source
        elif task == "reverse":
            target = source[::-1]
        else:  # sort
            target = sorted(source)
        pairs.append((_join_symbols(source), _join_symbols(target)))
    return pairs


def rare_symbol(seed: int, k: int) -> str:
    """The ``k``-th rare symbol of the ``copy_rare`` pairs of ``seed``: ``r<seed>.<k>``."""
    return f"r{seed}.{k}"


def _rare_copy_pairs(
    rng: random.Random, n: int, min_len: int, max_len: int, vocab: int, seed: int
) -> list[tuple[str, str]]:
    """``copy_rare``'s pairs: each position a rare symbol with probability ``RARE_SHARE``
    (a pair without one gets one at a random position), else one of ``vocab`` symbols."""
    pairs, made = [], 0
    for _ in range(n):
        words = [symbol(rng.randrange(vocab)) for _ in range(rng.randint(min_len, max_len))]
        rare = [i for i in range(len(words)) if rng.random() < RARE_SHARE]
        for i in rare or [rng.randrange(len(words))]:
            words[i], made = rare_symbol(seed, made), made + 1
        text = " ".join(words)
        pairs.append((text, text))
    return pairs


def _join_symbols(indices: Sequence[int]) -> str:
    return " ".join(symbol(i) for i in indices)


def _random_number(rng: random.Random, num_digits: int) -> int:
    """A uniformly drawn number with exactly ``num_digits`` digits (no leading zero; 1 digit
    allows 0)."""
    low = 0 if num_digits == 1 else 10 ** (num_digits - 1)
    return rng.randint(low, 10**num_digits - 1)


def _addition_pair(rng: random.Random, min_len: int, max_len: int) -> tuple[str, str]:
    a = _random_number(rng, rng.randint(min_len, max_len))
    b = _random_number(rng, rng.randint(min_len, max_len))
    source = f"{' '.join(str(a))} + {' '.join(str(b))}"
    return source, " ".join(str(a + b))


def make_vector_pairs(
    task: str,
    n: int,
    *,
    src_len: int = 24,
    tgt_len: int = 8,
    dim: int = 1,
    noise: float = 0.1,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Generate ``n`` forecasting pairs: source = first ``src_len`` points of a series, target =
    the next ``tgt_len`` points.

    Args:
        task: one of ``VECTOR_TASKS``. ``sines``: per dimension, a sum of 1-3 sines with random
            frequency, phase and amplitude. ``ar``: per dimension, a stationary AR(2) process
            scaled to unit variance.
        n: number of pairs.
        src_len, tgt_len: lengths of source and target.
        dim: number of channels; each is an independent series.
        noise: std of Gaussian observation noise added to every point (for ``ar`` the process
            itself has unit stationary variance, so ``noise`` is the noise-to-signal ratio).
        seed: seed of the private random generator.

    Returns:
        List of ``(source, target)`` float32 arrays of shapes ``(src_len, dim)``,
        ``(tgt_len, dim)``.
    """
    _check_task(task, VECTOR_TASKS)
    for name, value in (("n", n), ("src_len", src_len), ("tgt_len", tgt_len), ("dim", dim)):
        _check_at_least(name, value, 1)
    if not noise >= 0:  # also rejects NaN
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    length = src_len + tgt_len
    pairs = []
    for _ in range(n):
        if task == "sines":
            series = _sine_series(rng, length, dim)  # (T, D)
        else:
            series = _ar2_series(rng, length, dim)  # (T, D)
        series = (series + noise * rng.standard_normal((length, dim))).astype(np.float32)
        pairs.append((series[:src_len], series[src_len:]))
    return pairs


def _sine_series(rng: np.random.Generator, length: int, dim: int) -> np.ndarray:
    """Sum of 1-3 random sines per channel, shape (length, dim).

    Frequencies stay in [0.02, 0.25] cycles per step: slow enough to be seen within a short
    source window, well below the Nyquist limit of 0.5.
    """
    t = np.arange(length)[:, None]  # (T, 1)
    series = np.zeros((length, dim))
    for d in range(dim):
        k = int(rng.integers(1, 4))
        freq = rng.uniform(0.02, 0.25, size=k)
        phase = rng.uniform(0.0, 2 * math.pi, size=k)
        amp = rng.uniform(0.5, 1.5, size=k)
        series[:, d] = (amp * np.sin(2 * math.pi * freq * t + phase)).sum(axis=1)
    return series


def _ar2_coefficients(rng: np.random.Generator) -> tuple[float, float]:
    """Random stationary AR(2) coefficients (phi1, phi2).

    Drawn through the characteristic roots: a conjugate pair of radius r < 1 and angle theta
    gives x_t = 2 r cos(theta) x_{t-1} - r^2 x_{t-2} + e_t, which is stationary because both
    roots lie inside the unit circle.
    """
    radius = rng.uniform(0.5, 0.95)
    theta = rng.uniform(0.0, math.pi)
    return 2 * radius * math.cos(theta), -(radius**2)


def _ar2_variance(phi1: float, phi2: float) -> float:
    """Stationary variance of an AR(2) process with unit-variance innovations, solved from the
    Yule-Walker equations."""
    return (1 - phi2) / ((1 + phi2) * ((1 - phi2) ** 2 - phi1**2))


def _ar2_series(rng: np.random.Generator, length: int, dim: int) -> np.ndarray:
    """Independent stationary AR(2) series per channel, scaled to unit variance, shape
    (length, dim)."""
    series = np.zeros((length, dim))
    for d in range(dim):
        phi1, phi2 = _ar2_coefficients(rng)
        innovations = rng.standard_normal(_AR_BURN_IN + length)
        x = np.zeros(_AR_BURN_IN + length)
        for t in range(2, len(x)):
            x[t] = phi1 * x[t - 1] + phi2 * x[t - 2] + innovations[t]
        series[:, d] = x[_AR_BURN_IN:] / math.sqrt(_ar2_variance(phi1, phi2))
    return series


def write_tsv(pairs: Sequence[tuple[str, str]], path: str | Path) -> None:
    """Write token pairs as ``source<TAB>target`` lines (the format the data loader reads)."""
    with open(path, "w", encoding="utf-8") as f:
        for i, (source, target) in enumerate(pairs):
            if any(c in side for side in (source, target) for c in "\t\n"):
                raise ValueError(f"pair {i} contains a tab or newline; cannot write it as TSV")
            f.write(f"{source}\t{target}\n")


def write_jsonl(pairs: Sequence[tuple[np.ndarray, np.ndarray]], path: str | Path) -> None:
    """Write vector pairs as JSON lines ``{"source": [[...], ...], "target": [[...], ...]}``,
    one row of floats per time step."""
    with open(path, "w", encoding="utf-8") as f:
        for source, target in pairs:
            record = {
                "source": np.asarray(source, dtype=float).tolist(),
                "target": np.asarray(target, dtype=float).tolist(),
            }
            f.write(json.dumps(record) + "\n")


def _check_task(task: str, valid: tuple[str, ...]) -> None:
    if task not in valid:
        raise ValueError(f"unknown task {task!r}; valid tasks are {', '.join(valid)}")


def _check_at_least(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
