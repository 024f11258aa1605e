"""Serving a trained model over HTTP: ``hybridseq serve RUN_OR_EXPORT`` (the ``serve`` extra).

    app = create_app("runs/g2p")          # a run or checkpoint directory, an export, a forecaster
    uvicorn.run(app, host="127.0.0.1", port=8000)

Endpoints: ``POST /v1/predict`` (token models: outputs, and on request the n best with scores
and attention weights), ``POST /v1/forecast`` (forecasting runs: series as JSON or a CSV upload
-> forecasts with interval columns in the series' own time index), ``GET /v1/model``,
``GET /healthz``, the page at ``GET /`` and FastAPI's docs at ``/docs``.

Requests from concurrent clients are micro-batched: a ``MicroBatcher`` gathers what arrives
within ``max_wait_ms`` (up to ``max_batch`` inputs, with the same decoding parameters) into one
decoder call, which runs in a worker thread so the event loop keeps answering. A user's mistake
is a 4xx with a JSON ``detail`` naming the limit or the input, never a 500.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field, ValidationError

from hybridseq import api
from hybridseq.checkpoint import CheckpointError
from hybridseq.config import ConfigError
from hybridseq.data import DataError

WEB = Path(__file__).parent / "web"
USER_ERRORS = (DataError, ConfigError, ValueError)  # a bad input: 422, never a 500


class Predictor(Protocol):
    """What the server needs of a model: ``api.Model`` and ``runtime.ExportedModel`` both."""

    def predict(
        self,
        sources: Sequence[Any],
        beam: int | None = None,
        steps: int | None = None,
        covariates: Sequence[Any] | None = None,
        n_best: int = 1,
        attention: bool = False,
    ) -> list[Any]: ...


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how requests are batched."""

    max_batch: int = 32  # inputs per decoder call; 1 = one request at a time
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for company
    max_inputs: int = 64  # inputs per request
    max_input_chars: int = 256  # characters per text input (rows per vector input)
    max_body_bytes: int = 1 << 20  # request body, JSON or upload
    max_beam: int = 16

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_inputs", "max_input_chars", "max_body_bytes", "max_beam"):
            if getattr(self, name) < 1:
                raise ValueError(f"serve: {name}={getattr(self, name)}: must be >= 1")
        if self.max_wait_ms < 0:
            raise ValueError(f"serve: max_wait_ms={self.max_wait_ms}: must be >= 0")


# ---- loading ------------------------------------------------------------------------------------
@dataclass
class Served:
    """The loaded model: a ``Predictor`` (token or vector model) or a forecaster."""

    path: Path
    predictor: Predictor | None = None
    forecaster: Any = None  # hybridseq.forecast.Forecaster
    info: dict[str, Any] = field(default_factory=dict)


def load_served(path: str | Path) -> Served:
    """A forecasting run (``forecast.json``), an export (``export.json``, decoded by
    onnxruntime) or a run / checkpoint directory (torch)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run, checkpoint or export directory")
    if (path / "forecast.json").is_file():
        from hybridseq.forecast import load_forecaster

        fc = load_forecaster(path, device="cpu")
        return Served(path, forecaster=fc, info=forecaster_info(fc))
    if (path / "export.json").is_file():
        from hybridseq import runtime  # the export extra: onnxruntime

        model = runtime.load(path)
        return Served(path, predictor=model, info=predictor_info(model, "onnxruntime"))
    model = api.load(path, device="cpu")
    return Served(path, predictor=model, info=predictor_info(model, "torch"))


def _as_dict(obj: Any) -> dict[str, Any]:
    """A config or codec as a plain dict, from ``api`` objects or an export's JSON."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def predictor_info(model: Any, engine: str) -> dict[str, Any]:
    """Family, sizes, vocabularies and decoding defaults of a token or vector model."""
    cfg = _as_dict(model.config)
    codec = _as_dict(model.codec) if hasattr(model.codec, "to_dict") else model.info["codec"]
    m = cfg["model"]
    info = {
        "kind": "tokens" if "vocab" in codec["target"] else "vectors",
        "engine": engine,
        "family": m["family"],
        "attention": m.get("attention", "none") != "none",
        "sizes": {k: v for k, v in m.items() if isinstance(v, int) and not isinstance(v, bool)},
        "decode": cfg.get("decode", {}),
        "vocabularies": {side: codec[side].get("vocab", {}).get("tokens") for side in codec},
    }
    if isinstance(model, api.Model):
        info["parameters"] = sum(p.numel() for p in model.network.parameters())
    return info


def forecaster_info(fc: Any) -> dict[str, Any]:
    """What a forecasting run takes and gives: horizon, lookback, columns, variables, levels."""
    m = fc.model.config.model
    return {
        "kind": "forecast",
        "engine": "torch",
        "family": m.family,
        "parameters": sum(p.numel() for p in fc.model.network.parameters()),
        "forecast": asdict(fc.config),
        "columns": asdict(fc.columns),
        "variables": list(fc.variables),
        "quantiles": list(fc.quantiles),
    }


# ---- micro-batching -----------------------------------------------------------------------------
@dataclass
class _Job:
    inputs: list[Any]
    key: tuple  # the decoding parameters: only jobs with equal keys share a decoder call
    future: asyncio.Future


class MicroBatcher:
    """One worker task that gathers queued jobs into decoder calls.

    A call takes the oldest job and the later ones with the same ``key``, waiting up to
    ``max_wait_ms`` after the oldest arrived for up to ``max_batch`` inputs in all (a job larger
    than that runs alone), and runs ``run(inputs, key)`` in a thread. Its outputs go back to
    each job's future in order. If a shared call fails, each of its jobs is run alone, so one
    bad input fails only its own request. ``calls`` counts the calls by their size in inputs.
    """

    def __init__(
        self, run: Callable[[list[Any], tuple], list[Any]], max_batch: int, max_wait_ms: float
    ) -> None:
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000.0
        self.calls: Counter[int] = Counter()
        self._queue: deque[_Job] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, inputs: list[Any], key: tuple) -> list[Any]:
        """Queue ``inputs`` and wait for their outputs (one per input, in order)."""
        job = _Job(list(inputs), key, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self._arrived.set()
        return await job.future

    async def _serve(self) -> None:
        while True:
            jobs = await self._gather()
            await self._call(jobs)

    def _queued(self, key: tuple) -> int:
        return sum(len(j.inputs) for j in self._queue if j.key == key)

    async def _gather(self) -> list[_Job]:
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        loop, key = asyncio.get_running_loop(), self._queue[0].key
        deadline = loop.time() + self.max_wait
        while self._queued(key) < self.max_batch and loop.time() < deadline:
            self._arrived.clear()
            try:  # an Event, not Queue.get, so a timeout never loses a job
                await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
            except TimeoutError:
                break
        taken, size = [], 0
        for job in list(self._queue):
            if job.key == key and (not taken or size + len(job.inputs) <= self.max_batch):
                taken.append(job)
                size += len(job.inputs)
        for job in taken:
            self._queue.remove(job)
        return taken

    async def _call(self, jobs: list[_Job]) -> None:
        inputs = [x for j in jobs for x in j.inputs]
        try:
            outputs = await asyncio.to_thread(self.run, inputs, jobs[0].key)
        except Exception as e:  # noqa: BLE001 - handed to the request, never kills the worker
            if len(jobs) > 1:
                for job in jobs:
                    await self._call([job])
            elif not jobs[0].future.done():
                jobs[0].future.set_exception(e)
            return
        self.calls[len(inputs)] += 1
        start = 0
        for job in jobs:
            if not job.future.done():  # a client that went away has cancelled its future
                job.future.set_result(outputs[start : start + len(job.inputs)])
            start += len(job.inputs)


# ---- requests -----------------------------------------------------------------------------------
class PredictRequest(BaseModel):
    """``inputs``: texts for a token model, or (S, D) lists of numbers for a vector model."""

    inputs: list[str | list[list[float]]] = Field(min_length=1)
    beam: int | None = Field(None, ge=1, description="beam size; default: the model's")
    n_best: int = Field(1, ge=1, description="hypotheses per input, at most the beam")
    attention: bool = Field(False, description="attention weights of each hypothesis")
    scores: bool = Field(False, description="each hypothesis's score")
    steps: int | None = Field(None, ge=1, le=10_000, description="vector models: outputs")


class SeriesIn(BaseModel):
    id: str
    values: list[float] | list[list[float]] = Field(min_length=1)
    time: list[str] | list[int] | None = None


class ForecastRequest(BaseModel):
    series: list[SeriesIn] = Field(min_length=1)


def check_predict(req: PredictRequest, served: Served, limits: Limits) -> None:
    """The request's own limits; a 422 naming the limit that was passed."""
    if served.predictor is None:
        raise HTTPException(404, "this server holds a forecasting model: POST /v1/forecast")
    if len(req.inputs) > limits.max_inputs:
        raise HTTPException(
            422, f"{len(req.inputs)} inputs: at most max_inputs={limits.max_inputs} per request"
        )
    for i, x in enumerate(req.inputs, 1):
        if len(x) > limits.max_input_chars:
            raise HTTPException(
                422, f"input {i} has length {len(x)}: max_input_chars={limits.max_input_chars}"
            )
    beam = req.beam or served.info["decode"].get("beam", 1)
    if beam > limits.max_beam:
        raise HTTPException(422, f"beam {beam}: at most max_beam={limits.max_beam}")
    if req.n_best > beam:
        raise HTTPException(422, f"n_best {req.n_best}: at most the beam ({beam})")
    if (req.attention or (req.scores and req.n_best == 1)) and not served.info["attention"]:
        raise HTTPException(422, "this model has no attention (scores alone: ask n_best > 1)")


def decode_batch(model: Predictor, inputs: list[Any], key: tuple) -> list[dict[str, Any]]:
    """One decoder call for ``MicroBatcher``: inputs -> per input {"output", "hypotheses"?}."""
    beam, n_best, attention, scores, steps = key
    detailed = n_best > 1 or attention or scores
    sources = [x if isinstance(x, str) else np.asarray(x, dtype=np.float32) for x in inputs]
    weights = attention or (detailed and n_best == 1)  # the best alone has a score with them
    found = model.predict(sources, beam=beam, steps=steps, n_best=n_best, attention=weights)
    out = []
    for item in found:
        if not detailed:
            out.append({"output": _plain(item)})
            continue
        hyps = [_hypothesis(h, attention) for h in (item if isinstance(item, list) else [item])]
        out.append({"output": hyps[0]["output"], "hypotheses": hyps})
    return out


def _plain(x: Any) -> Any:
    return x if isinstance(x, str) else np.asarray(x).tolist()


def _hypothesis(h: Any, attention: bool) -> dict[str, Any]:
    """A ``predict.Prediction`` (or an export's hypothesis) as JSON."""
    if hasattr(h, "to_dict"):
        d = h.to_dict()
    else:  # runtime.Hypothesis: output, score, attention, source/output symbols
        d = {"output": _plain(h.output), "score": h.score}
        if h.attention is not None:
            weights = np.round(np.asarray(h.attention, dtype=np.float64), 4).tolist()
            d["attention"] = {"source": h.source_symbols, "output": h.output_symbols}
            d["attention"]["weights"] = weights
    if not attention:
        d.pop("attention", None)
    return d


# ---- forecasts ----------------------------------------------------------------------------------
def series_from_json(req: ForecastRequest) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """id -> values (N, D) and id -> time stamps (N,): datetime64 where the times are dates,
    positions 0..N-1 where none are given."""
    values, times = {}, {}
    for s in req.series:
        y = np.asarray(s.values, dtype=np.float64)
        values[s.id] = y[:, None] if y.ndim == 1 else y
        if s.time is not None and len(s.time) != len(y):
            raise DataError(f"series {s.id!r}: {len(s.time)} time stamps for {len(y)} values")
        times[s.id] = _stamps(s.time, s.id) if s.time is not None else np.arange(len(y))
    if not all(np.isfinite(v).all() for v in values.values()):
        bad = next(sid for sid, v in values.items() if not np.isfinite(v).all())
        raise DataError(f"series {bad!r}: values must be finite")
    return values, times


def _stamps(time: list, sid: str) -> np.ndarray:
    import pandas as pd

    if time and isinstance(time[0], int):
        return np.asarray(time)
    try:
        return pd.to_datetime(pd.Series(time)).to_numpy()
    except (ValueError, TypeError) as e:
        raise DataError(f"series {sid!r}: time stamps: {e}") from None


def series_from_csv(data: bytes, columns: Any) -> tuple[dict, dict, dict]:
    """An uploaded CSV, read as in training (the run's columns) -> values, times, covariates."""
    import pandas as pd

    from hybridseq.series import read_series

    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise DataError(f"CSV upload: {e}") from None
    series = read_series(frame, columns)
    return series.values, series.times, series.covariates


def next_times(times: np.ndarray, n_values: int, horizon: int) -> list[Any]:
    """The H time stamps after a series' N values: the rows after them where the table has
    them (covariates' future rows), else continued at the series' frequency (pandas infers it;
    the last interval where it cannot tell); integers for integer times."""
    import pandas as pd

    if len(times) >= n_values + horizon:
        ahead = times[n_values : n_values + horizon]
    elif np.issubdtype(times.dtype, np.datetime64):
        past = pd.DatetimeIndex(times[:n_values])
        freq = pd.DatetimeIndex(past, freq="infer").freq if len(past) >= 3 else None
        if freq is not None:
            ahead = pd.date_range(past[-1], periods=horizon + 1, freq=freq)[1:].to_numpy()
        else:
            step = past[-1] - past[-2] if len(past) > 1 else pd.Timedelta(days=1)
            ahead = np.array([past[-1] + step * (i + 1) for i in range(horizon)])
    else:
        step = times[n_values - 1] - times[n_values - 2] if n_values > 1 else 1
        ahead = times[n_values - 1] + step * np.arange(1, horizon + 1)
    return time_labels(np.asarray(ahead))


def time_labels(times: np.ndarray) -> list[Any]:
    """Time stamps as JSON: ISO dates (with the time of day where any has one), or numbers."""
    import pandas as pd

    if not np.issubdtype(times.dtype, np.datetime64):
        return [x.item() if hasattr(x, "item") else x for x in times]
    idx = pd.DatetimeIndex(times)
    fmt = "%Y-%m-%d" if (idx == idx.normalize()).all() else "%Y-%m-%dT%H:%M:%S"
    return [t.strftime(fmt) for t in idx]


def run_forecast(fc: Any, values: dict, times: dict, covariates: dict) -> dict[str, Any]:
    """Forecasts of every series: the table (series, [variable,] step, time, forecast, one
    column per quantile level) and, per series, history and forecast for the page's plot."""
    from hybridseq.forecast import forecast_table, point_forecasts, predict_quantiles

    quantiles = predict_quantiles(fc, values, covariates or None)
    points = point_forecasts(fc, quantiles)
    table = forecast_table(points, fc.variables, quantiles if fc.quantiles else None, fc.quantiles)
    h = fc.config.horizon
    ahead = {sid: next_times(times[sid], len(values[sid]), h) for sid in values}
    stamps = [ahead[s][k - 1] for s, k in zip(table["series"], table["step"], strict=True)]
    table.insert(table.columns.get_loc("step") + 1, "time", stamps)
    plots = []
    for sid, y in values.items():
        q = quantiles[sid]  # (H, D, Q)
        plots.append(
            {
                "series": sid,
                "history": {"time": time_labels(times[sid][: len(y)]), "values": y.tolist()},
                "time": ahead[sid],
                "forecast": points[sid].tolist(),
                "lower": q[..., 0].tolist() if fc.quantiles else None,
                "upper": q[..., -1].tolist() if fc.quantiles else None,
            }
        )
    return {
        "horizon": h,
        "variables": list(fc.variables),
        "quantiles": list(fc.quantiles),
        "columns": list(table.columns),
        "rows": json.loads(table.to_json(orient="records")),
        "series": plots,
    }


def forecast_csv(result: dict[str, Any]) -> str:
    """``run_forecast``'s table as CSV text."""
    import pandas as pd

    return pd.DataFrame(result["rows"], columns=result["columns"]).to_csv(index=False)


# ---- the app ------------------------------------------------------------------------------------
class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes (declared or streamed) is a 413
    naming the limit; the body read is handed on to the app."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit():
            return await _json(send, 400, "Content-Length: not a number")
        if int(declared) > self.limit:
            return await self._too_large(send)
        chunks, size, more = [], 0, True
        while more:  # bounded: at most limit bytes are kept
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._too_large(send)
            more = message.get("more_body", False)
        body, given = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal given
            if given:
                return await receive()
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    async def _too_large(self, send: Callable) -> None:
        await _json(send, 413, f"request body over max_body_bytes={self.limit}")


async def _json(send: Callable, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Malformed JSON is the client's syntax error (400); a well-formed body that does not fit
    the schema stays FastAPI's 422."""
    bad = [e for e in exc.errors() if e.get("type") == "json_invalid"]
    if bad:
        return JSONResponse({"detail": f"malformed JSON: {bad[0].get('msg', '')}"}, status_code=400)
    return await request_validation_exception_handler(request, exc)


def create_app(
    model_path: str | Path,
    *,
    max_batch: int = 32,
    max_wait_ms: float = 5.0,
    max_inputs: int = 64,
    max_input_chars: int = 256,
    max_body_bytes: int = 1 << 20,
    max_beam: int = 16,
) -> FastAPI:
    """The FastAPI app serving the model at ``model_path`` (see the module's docstring).
    ``max_batch`` 1 turns micro-batching off: one request per decoder call."""
    limits = Limits(max_batch, max_wait_ms, max_inputs, max_input_chars, max_body_bytes, max_beam)
    served = load_served(model_path)
    batcher = None
    if served.predictor is not None:
        model = served.predictor
        batcher = MicroBatcher(lambda xs, key: decode_batch(model, xs, key), max_batch, max_wait_ms)

    async def lifespan(app: FastAPI):
        if batcher is not None:
            batcher.start()
        yield
        if batcher is not None:
            await batcher.stop()

    app = FastAPI(title="hybridseq", version="1", lifespan=lifespan)
    app.state.served, app.state.limits, app.state.batcher = served, limits, batcher
    app.state.forecast_lock = asyncio.Lock()
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    _add_routes(app)
    return app


_FORECAST_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": ForecastRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        }
    }
}


def _add_routes(app: FastAPI) -> None:
    served: Served = app.state.served
    limits: Limits = app.state.limits

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model_info() -> dict[str, Any]:
        accepts = {"max_inputs": limits.max_inputs, "max_input_chars": limits.max_input_chars}
        accepts.update(max_body_bytes=limits.max_body_bytes, max_beam=limits.max_beam)
        batching: dict[str, Any] = {"max_batch": limits.max_batch}
        batching["max_wait_ms"] = limits.max_wait_ms
        if app.state.batcher is not None:  # decoder calls so far, by their size in inputs
            batching["calls"] = dict(sorted(app.state.batcher.calls.items()))
        return {**served.info, "accepts": accepts, "batching": batching}

    @app.post("/v1/predict")
    async def predict(req: PredictRequest) -> dict[str, Any]:
        check_predict(req, served, limits)
        key = (req.beam, req.n_best, req.attention, req.scores, req.steps)
        try:
            results = await app.state.batcher.submit(req.inputs, key)
        except USER_ERRORS as e:
            raise HTTPException(422, str(e)) from None
        body: dict[str, Any] = {"outputs": [r["output"] for r in results]}
        if any("hypotheses" in r for r in results):
            body["hypotheses"] = [r["hypotheses"] for r in results]
        return body

    @app.post("/v1/forecast", openapi_extra=_FORECAST_BODY)
    async def forecast(request: Request, format: str = "json") -> Any:
        """Series as JSON (``{"series": [{"id", "values", "time"?}]}``) or a CSV upload (form
        field ``file``, the run's columns) -> forecasts; ``?format=csv`` gives the table."""
        if served.forecaster is None:
            raise HTTPException(404, "this server holds no forecasting model: POST /v1/predict")
        values, times, covariates = await _read_series(request, served)
        async with app.state.forecast_lock:  # one model call at a time, off the event loop
            try:
                fc = served.forecaster
                result = await asyncio.to_thread(run_forecast, fc, values, times, covariates)
            except USER_ERRORS as e:
                raise HTTPException(422, str(e)) from None
        if format == "csv":
            return PlainTextResponse(forecast_csv(result), media_type="text/csv")
        return result

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html")

    @app.get("/app.js", include_in_schema=False)
    async def script() -> FileResponse:
        return FileResponse(WEB / "app.js", media_type="text/javascript")


async def _read_series(request: Request, served: Served) -> tuple[dict, dict, dict]:
    """The series of a forecast request, JSON or a multipart CSV upload; 400 for a body that
    cannot be parsed, 422 for one that parses but is not series."""
    kind = request.headers.get("content-type", "")
    try:
        if kind.startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise HTTPException(422, "multipart upload: no file field named 'file'")
            return series_from_csv(await upload.read(), served.forecaster.columns)
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HTTPException(400, f"malformed JSON: {e}") from None
        try:
            req = ForecastRequest.model_validate(payload)
        except ValidationError as e:
            raise HTTPException(422, json.loads(e.json(include_url=False))) from None
        values, times = series_from_json(req)
        return values, times, {}
    except DataError as e:
        raise HTTPException(422, str(e)) from None


def serve(path: str | Path, host: str = "127.0.0.1", port: int = 8000, **limits: Any) -> None:
    """Load the model at ``path`` and serve it with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(path, **limits), host=host, port=port, log_level="info")
