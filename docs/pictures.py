"""Make the pictures under docs/ that the README shows, each from a small model trained here.

    python docs/pictures.py attention   # docs/attention.png: the demo's reverse task
    python docs/pictures.py forecast    # docs/forecast.png: Mauna Loa CO2, monthly

Each takes a minute or two on two CPU cores; the models are small and briefly trained, enough
for the picture to show what it is about, not a benchmark.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import hybridseq
from hybridseq.heatmap import draw

DOCS = Path(__file__).resolve().parent
SOURCE = "m c k a h f b j e l d g i"  # 13 symbols of the 14 the model saw in training


def attention(out: Path = DOCS / "attention.png") -> None:
    """Train a small LSTM-attention model to reverse sequences (the demo's task, smaller), then
    draw where it looked while reversing one held-out sequence: the anti-diagonal."""
    config = {
        "data": {
            "synth": {"task": "reverse", "n_train": 8000, "n_valid": 200, "n_test": 10},
            "src_tokenize": "whitespace",
        },
        "model": {"family": "lstm_attention", "emb_dim": 32, "enc_hidden": 64, "dec_hidden": 64},
        "train": {"batch_size": 64, "max_steps": 400, "lr": 0.005, "eval_every": 200},
    }
    config["data"]["synth"].update(min_len=5, max_len=15, vocab=14)
    with tempfile.TemporaryDirectory() as run:
        hybridseq.train(config, out=run)
        model = hybridseq.load(run)
        (best,) = model.predict([SOURCE], beam=4, attention=True)[0]
    print(f"{SOURCE} -> {best.output}")
    draw(best.alignment, out, title="reverse: where each output symbol looked")
    print(f"wrote {out}")


def co2_table() -> pd.DataFrame:
    """Monthly means of the Mauna Loa CO2 series shipped with statsmodels, in long form."""
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().ffill()["1970":]
    return pd.DataFrame({"station": "mauna_loa", "month": monthly.index, "ppm": monthly.values})


def forecast(out: Path = DOCS / "forecast.png") -> None:
    """Train a small hybrid forecaster with an 80 % interval on CO2 and draw its test year
    beside the actuals and the seasonal naive forecast."""
    from hybridseq.forecast import evaluate_forecasts, fit_forecaster
    from hybridseq.forecast import forecast as forecast_
    from hybridseq.series import Columns

    config = {
        "forecast": {"horizon": 12, "lookback": 36, "period": 12},
        "model": {"family": "hybrid", "d_model": 32, "heads": 2, "ff_dim": 64, "enc_layers": 1},
        "train": {"batch_size": 32, "max_steps": 200, "lr": 0.003, "eval_every": 50},
    }
    # each window divided by its last season: a flat 1 is the seasonal naive forecast
    config["forecast"].update(window_season=True, scale="window_last")
    config["model"].update(dec_hidden=32, quantiles=[0.1, 0.5, 0.9])
    config["train"].update(loss="quantile", metrics=["mae"], select="mae")
    table, columns = co2_table(), Columns(id="station", time="month", target=["ppm"])
    with tempfile.TemporaryDirectory() as run:
        fit_forecaster(table, config, run, columns=columns)
        scores = evaluate_forecasts(
            run,
            table,
            baselines=["seasonal_naive"],
            plot=out,
            tail=48,
            plot_baselines=["seasonal_naive"],
        )
        print(forecast_(run, table).head(3).to_csv(index=False))  # the next year's first months
    print(scores.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {out}")


def main(argv: list[str]) -> None:
    makers = {"attention": attention, "forecast": forecast}
    if len(argv) != 1 or argv[0] not in makers:
        sys.exit(f"usage: python docs/pictures.py {'|'.join(makers)}")
    np.random.seed(0)
    makers[argv[0]]()


if __name__ == "__main__":
    main(sys.argv[1:])
