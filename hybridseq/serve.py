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
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from hybridseq.microbatch import MicroBatcher
from hybridseq.outputs import Prediction
from hybridseq.serve_forecast import (
    ForecastRequest,
    forecast_csv,
    forecaster_info,
    run_forecast,
    series_from_csv,
    series_from_json,
)

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


def load_served(path: str | Path, threads: int | None = None) -> Served:
    """A forecasting run (``forecast.json``), an export (``export.json``, decoded by
    onnxruntime) or a run / checkpoint directory (torch); ``threads`` for onnxruntime (torch's
    are process-wide: ``serve`` sets them)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run, checkpoint or export directory")
    if (path / "forecast.json").is_file():
        from hybridseq.forecast import load_forecaster

        fc = load_forecaster(path, device="cpu")
        return Served(path, forecaster=fc, info=forecaster_info(fc))
    if (path / "export.json").is_file():
        from hybridseq import runtime  # the export extra: onnxruntime

        model = runtime.load(path, threads=threads)
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


# ---- requests -----------------------------------------------------------------------------------
class PredictRequest(BaseModel):
    """``inputs``: texts for a token model, or (S, D) lists of numbers for a vector model."""

    inputs: list[str | list[list[float]]] = Field(min_length=1)
    beam: int | None = Field(None, ge=1, description="beam size; default: the model's")
    n_best: int = Field(1, ge=1, description="hypotheses per input, at most the beam")
    attention: bool = Field(False, description="attention weights of each hypothesis")
    scores: bool = Field(False, description="each hypothesis's score")
    steps: int | None = Field(None, ge=1, le=10_000, description="vector models: outputs")


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


def _hypothesis(h: Prediction, attention: bool) -> dict[str, Any]:
    """An ``outputs.Prediction`` as JSON (its weights only when asked for)."""
    d = h.to_dict()
    if not attention:
        d.pop("attention", None)
    return d


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
    threads: int | None = None,
) -> FastAPI:
    """The FastAPI app serving the model at ``model_path`` (see the module's docstring).
    ``max_batch`` 1 turns micro-batching off: one request per decoder call. ``threads``: an
    export's onnxruntime threads (None: its default)."""
    limits = Limits(max_batch, max_wait_ms, max_inputs, max_input_chars, max_body_bytes, max_beam)
    served = load_served(model_path, threads)
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


def serve(
    path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int | None = 1,
    **limits: Any,
) -> None:
    """Load the model at ``path`` and serve it with uvicorn until interrupted.

    ``threads`` is the decoder's intra-op threads (torch, or onnxruntime for an export; None:
    the library's default). One is the default: micro-batching already fills each call, and on
    a machine of 2 cores that the clients share, a second torch thread waiting on a busy core
    cost 3/4 of the batched throughput (benchmarks/serve.py, 32 clients: 36 against 136
    requests/s)."""
    import torch
    import uvicorn

    if threads is not None:
        torch.set_num_threads(threads)
    app = create_app(path, threads=threads, **limits)
    uvicorn.run(app, host=host, port=port, log_level="info")
