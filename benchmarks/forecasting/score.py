"""Rescore committed forecast CSVs against the competition's test parts, without any model.

    python benchmarks/forecasting/score.py benchmarks/forecasting/m3_lstm_attention.csv
    python benchmarks/forecasting/score.py m3_lstm_attention.csv m3_hybrid.csv   # and their mean

Each CSV is ``dataset,series,step,forecast`` (what ``run.py`` writes), one data set per file,
every series of it with steps 1..h. The table has one column per file, by frequency, and the
``all`` row averaged over forecast points as in ``run.py``. With several files of one data set
a last column scores their point-by-point mean: a combination of forecasts, not a single model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from run import DATASETS, TABLE, load_competition, score
from run import table as run_table

COLUMNS = ["dataset", "series", "step", "forecast"]


def read_csv(path: Path) -> pd.DataFrame:
    """A forecast CSV, checked for its columns."""
    frame = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (need {COLUMNS})")
    return frame


def dataset_of(path: Path, frame: pd.DataFrame) -> str:
    """The data set key (``m3``, ``tourism``) named in the file's ``dataset`` column."""
    names = frame["dataset"].unique()
    keys = {v[0]: k for k, v in DATASETS.items()}
    if len(names) != 1 or names[0] not in keys:
        raise ValueError(f"{path}: dataset column must be one of {sorted(keys)}, got {names}")
    return keys[names[0]]


def read_forecasts(path: Path, frame: pd.DataFrame, data: dict[str, list]) -> dict:
    """Series name -> its forecast (h,), checked against the data set's series and horizons."""
    groups = {sn: rows.sort_values("step") for sn, rows in frame.groupby("series")}
    forecasts = {}
    for s in (s for items in data.values() for s in items):
        rows = groups.get(s.sn, frame.iloc[:0])
        if rows["step"].tolist() != list(range(1, s.h + 1)):
            raise ValueError(f"{path}: series {s.sn} needs steps 1..{s.h}, has {len(rows)} rows")
        forecasts[s.sn] = rows["forecast"].to_numpy(float)
    if not np.all(np.isfinite(np.concatenate(list(forecasts.values())))):
        raise ValueError(f"{path}: a forecast is nan or inf")
    return forecasts


def table(columns: dict[str, dict], data: dict[str, list], metric: str) -> pd.DataFrame:
    """Scores by frequency (rows) and forecast set (columns), plus ``run.py``'s ``all`` row."""
    rows = [
        {
            "frequency": freq,
            "scores": {name: score(f, items, metric) for name, f in columns.items()},
            "series": len(items),
            "horizon": items[0].h,
            "train_seconds": 0.0,  # run.table's column; no training here
        }
        for freq, items in data.items()
    ]
    return run_table(rows)[list(columns)].astype(float)


def rescore(paths: list[Path]) -> tuple[str, pd.DataFrame]:
    """The data set's key and the table of the files (and of their mean, for several)."""
    frames = {path: read_csv(path) for path in paths}
    keys = {dataset_of(path, frame) for path, frame in frames.items()}
    if len(keys) != 1:
        raise ValueError(f"the files hold different data sets: {sorted(keys)}")
    key = keys.pop()
    data = load_competition(key, limit=None)
    columns = {path.stem: read_forecasts(path, frame, data) for path, frame in frames.items()}
    if len(columns) > 1:
        members = list(columns.values())
        columns["mean"] = {sn: np.mean([f[sn] for f in members], axis=0) for sn in members[0]}
    return key, table(columns, data, DATASETS[key][1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("csv", nargs="+", type=Path)
    args = p.parse_args()
    try:
        key, frame = rescore(args.csv)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"score.py: error: {e}") from None
    print(f"{DATASETS[key][0]}, {TABLE[DATASETS[key][1]].label} %")
    print(frame.round(3).to_string())


if __name__ == "__main__":
    main()
