"""Series for forecasting: read a table (CSV or DataFrame, long or wide form) into a
``SeriesSet``, checking every value and time stamp; errors name the series, the position and
the time stamp. A table with NeuralForecast's ``unique_id, ds, y`` columns is read as such
without being told; ``future_times`` continues a series' time stamps past its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hybridseq.data import DataError

WIDE_ID = "series"  # the id of the one series a wide table holds


@dataclass
class Columns:
    """Where the series are in a table.

    Long form: one row per (series, time): an ``id`` column, a ``time`` column and the
    ``target`` columns (default ``["target"]``). Wide form (``wide``): one series with one
    column per variable (default: every column but ``time`` and the covariates) and an optional
    ``time`` column (without it, row order is time order). ``covariates`` name columns known
    ahead; rows after a series' last target value with empty targets and filled covariates are
    its future.
    """

    id: str = "id"
    time: str = "time"
    target: list[str] | None = None
    wide: bool = False
    covariates: list[str] | None = None


# The long format of NeuralForecast and StatsForecast, recognised when no columns are given.
NIXTLA = Columns(id="unique_id", time="ds", target=["y"])


def infer_columns(frame: pd.DataFrame) -> Columns:
    """The columns of a table read without being told: ``NIXTLA``'s where it has all three,
    else the defaults (``id``, ``time``, ``target``)."""
    names = {str(c) for c in frame.columns}
    if {NIXTLA.id, NIXTLA.time, *NIXTLA.target} <= names:
        return Columns(id=NIXTLA.id, time=NIXTLA.time, target=list(NIXTLA.target))
    return Columns()


@dataclass
class SeriesSet:
    """Series keyed by id, oldest value first; with covariates, F_i >= 0 future rows follow
    the N_i observed ones."""

    values: dict[str, np.ndarray]  # id -> (N_i, D) float64, finite
    times: dict[str, np.ndarray]  # id -> (N_i + F_i,) time stamps, strictly increasing
    variables: list[str]  # the D variable names
    covariates: dict[str, np.ndarray] = field(default_factory=dict)  # id -> (N_i + F_i, C)
    covariate_names: list[str] = field(default_factory=list)  # the C names; [] for none
    columns: Columns = field(default_factory=Columns)  # the table's columns they were read from

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        variables: Sequence[str] | None = None,
        covariates: dict[str, np.ndarray] | None = None,
        covariate_names: Sequence[str] | None = None,
    ) -> SeriesSet:
        """Series from arrays id -> (N,) or (N, D), and optionally their covariates id ->
        (N + F,) or (N + F, C), F rows of them ahead of the values; times are positions."""
        values, times, known = {}, {}, {}
        for sid, arr in arrays.items():
            values[str(sid)] = as_columns(arr)
            if covariates is not None:
                known[str(sid)] = as_columns(covariates[sid])
                if len(known[str(sid)]) < len(values[str(sid)]):
                    raise DataError(f"series {sid!r}: fewer rows of covariates than values")
            times[str(sid)] = np.arange(len(known.get(str(sid), values[str(sid)])))
        names = list(variables or _default_names("x", values))
        cov_names = list(covariate_names or _default_names("c", known))
        for kind, arrays_, width in (
            ("values", values, len(names)),
            ("covariates", known, len(cov_names)),
        ):
            for sid, x in arrays_.items():
                if x.shape[1] != width:
                    raise DataError(
                        f"arrays: series {sid!r} has {x.shape[1]} columns of {kind}, expected "
                        f"{width} (as the first series, or the names given)"
                    )
        series = cls(values, times, names, known, cov_names)
        for sid in values:
            _check_values(series, sid, "arrays")
        return series


def as_columns(x: np.ndarray) -> np.ndarray:
    """(N,) or (N, D) -> (N, D) float64."""
    x = np.asarray(x, dtype=np.float64)
    return x[:, None] if x.ndim == 1 else x


def _default_names(prefix: str, arrays: dict[str, np.ndarray]) -> list[str]:
    """Column names x0, x1, ... for the width of the first (N, D) array; [] for none."""
    width = next(iter(arrays.values())).shape[1] if arrays else 0
    return [f"{prefix}{d}" for d in range(width)]


def read_series(data: str | Path | pd.DataFrame, columns: Columns | None = None) -> SeriesSet:
    """Read series from a CSV file or a DataFrame, long or wide form (see ``Columns``;
    without ``columns``, ``infer_columns`` decides).

    Raises:
        DataError: a missing column, a non-numeric, NaN or infinite value (an empty target is
            allowed only in the future rows after the last target value, with covariates), or
            unsorted or duplicated time stamps within a series; the message names the series,
            the position in it (0 = oldest) and the time stamp.
    """
    frame, where = _load_table(data)
    columns = columns or infer_columns(frame)
    series = (
        _read_wide(frame, columns, where) if columns.wide else _read_long(frame, columns, where)
    )
    series.columns = columns
    return series


def _load_table(data: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if isinstance(data, pd.DataFrame):
        return data, "DataFrame"
    path = Path(data)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a CSV file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:  # utf-8-sig: a byte-order mark is dropped, as by every reader of the project
        return pd.read_csv(path, encoding="utf-8-sig"), str(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV table ({err})") from None


def _require_columns(frame: pd.DataFrame, names: Sequence[str], where: str) -> None:
    have = [str(c) for c in frame.columns]
    for name in names:
        if name not in have:
            raise DataError(f"{where}: missing column {name!r} (columns: {', '.join(have)})")


def _read_long(frame: pd.DataFrame, columns: Columns, where: str) -> SeriesSet:
    targets, known = columns.target or ["target"], columns.covariates or []
    _require_columns(frame, [columns.id, columns.time, *targets, *known], where)
    times_all = _parse_times(frame[columns.time], columns.time, where)
    if frame[columns.id].isna().any():
        row = int(np.flatnonzero(frame[columns.id].isna().to_numpy())[0])
        raise DataError(f"{where}: row {row}: column {columns.id!r} (the series id) is empty")
    series = SeriesSet({}, {}, list(targets), {}, list(known))
    for sid, rows in frame.groupby(columns.id, sort=False).indices.items():
        _add_series(series, str(sid), frame.iloc[rows], times_all[rows], where)
    return series


def _read_wide(frame: pd.DataFrame, columns: Columns, where: str) -> SeriesSet:
    has_time, known = columns.time in frame.columns, columns.covariates or []
    others = [str(c) for c in frame.columns if c != columns.time and str(c) not in known]
    targets = columns.target or others
    _require_columns(frame, [*targets, *known], where)
    if not targets:
        raise DataError(f"{where}: no value columns besides {columns.time!r}")
    if has_time:
        stamps = _parse_times(frame[columns.time], columns.time, where)
    else:
        stamps = np.arange(len(frame))
    series = SeriesSet({}, {}, list(targets), {}, list(known))
    _add_series(series, WIDE_ID, frame, stamps, where)
    return series


def _add_series(
    series: SeriesSet, sid: str, rows: pd.DataFrame, stamps: np.ndarray, where: str
) -> None:
    """Parse and check one series' rows (its targets and covariates) into ``series``. With
    covariates, the rows after the last target value whose targets are all empty are the
    future: their covariates are kept, their targets are not values."""
    values = _numeric(rows[series.variables], sid, where)
    series.times[sid] = stamps
    if series.covariate_names:
        series.covariates[sid] = _numeric(rows[series.covariate_names], sid, where)
        observed = np.flatnonzero(~np.isnan(values).all(axis=1))
        values = values[: observed[-1] + 1 if len(observed) else 0]
    series.values[sid] = values
    _check_times(series, sid, where)
    _check_values(series, sid, where)


def _parse_times(column: pd.Series, name: str, where: str) -> np.ndarray:
    """A time column as numbers or datetime64 (N,); refuses missing or unparseable stamps."""
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise DataError(f"{where}: row {row}: column {name!r} is empty")
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy()
    try:
        return pd.to_datetime(column).to_numpy()
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{where}: column {name!r} holds neither numbers nor dates ({err})"
        ) from None


def _numeric(frame: pd.DataFrame, sid: str, where: str) -> np.ndarray:
    """Value columns (N, D) as float64; a cell that is not a number is an error."""
    out = np.empty(frame.shape, dtype=np.float64)
    for d, name in enumerate(frame.columns):
        raw = frame[name]
        parsed = pd.to_numeric(raw, errors="coerce")
        bad = parsed.isna().to_numpy() & raw.notna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where}: series {sid!r}, position {i}: column {name!r} is not a number: "
                f"{raw.iloc[i]!r}"
            )
        out[:, d] = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _check_times(series: SeriesSet, sid: str, where: str) -> None:
    """Time stamps strictly increasing within the series."""
    t = series.times[sid]
    steps = t[1:] > t[:-1]
    if not steps.all():
        i = int(np.flatnonzero(~steps)[0]) + 1
        what = "duplicated" if t[i] == t[i - 1] else "out of order (before the previous one)"
        raise DataError(
            f"{where}: series {sid!r}, position {i}: time {t[i]} is {what}; "
            "each series needs strictly increasing, unique time stamps"
        )


def _check_values(series: SeriesSet, sid: str, where: str) -> None:
    """Every value and covariate finite, or a message naming the series, position, time and
    column."""
    checks = [(series.values[sid], series.variables)]
    if series.covariate_names:
        checks.append((series.covariates[sid], series.covariate_names))
    for x, names in checks:
        bad = np.argwhere(~np.isfinite(x))
        if len(bad):
            i, d = bad[0]
            raise DataError(
                f"{where}: series {sid!r}, position {i} (time {series.times[sid][i]}): "
                f"{names[d]!r} is {x[i, d]}; values must be finite"
            )


def future_times(times: np.ndarray, n: int, horizon: int) -> np.ndarray:
    """The ``horizon`` time stamps after a series' first ``n``: its own where the table has
    them (the rows after the history: covariates' future rows, or the test part's actuals),
    else continued from its last stamp: dates at the frequency pandas infers from them
    (``pd.infer_freq``: months stay month starts or ends), or at the last interval where
    pandas cannot tell; numbers at their last interval (1 for a one-point series).

    Args:
        times: (M,) stamps, strictly increasing: numbers or datetime64.
    Returns:
        (horizon,) stamps of the same dtype.
    """
    times = np.asarray(times)
    known = times[n : n + horizon]
    missing = horizon - len(known)
    if missing <= 0:
        return known
    return np.concatenate([known, _continued(times, missing)])


def _continued(times: np.ndarray, k: int) -> np.ndarray:
    """The k stamps after the last of ``times`` (M,) at their inferred frequency."""
    if np.issubdtype(times.dtype, np.datetime64):
        freq = pd.DatetimeIndex(times, freq="infer").freq if len(times) >= 3 else None
        if freq is not None:
            return pd.date_range(times[-1], periods=k + 1, freq=freq)[1:].to_numpy()
        step = times[-1] - times[-2] if len(times) > 1 else np.timedelta64(1, "D")
    else:
        step = times[-1] - times[-2] if len(times) > 1 else 1
    return times[-1] + step * np.arange(1, k + 1)
