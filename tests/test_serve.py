"""The HTTP server on tiny trained runs: predictions as the Python API gives them (n best,
scores, attention), model info, every kind of bad input answered with a 4xx naming the limit
(never a 500), concurrent clients micro-batched with each answer its own, and forecasts from
JSON and CSV in the series' own time index."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
import torch
from conftest import tiny_train_dict

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from hybridseq import api  # noqa: E402
from hybridseq.microbatch import MicroBatcher  # noqa: E402
from hybridseq.serve import create_app  # noqa: E402
from hybridseq.serve_forecast import next_times  # noqa: E402

WORDS = ["a b c", "d e", "f a b d", "c", "e e f", "b a"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tokens")
    torch.manual_seed(0)
    api.train(tiny_train_dict("reverse", "lstm_attention", steps=30), out, log=lambda m: None)
    return out


@pytest.fixture(scope="module")
def model(run):
    return api.load(run, device="cpu")


@pytest.fixture(scope="module")
def client(run):
    app = create_app(run, max_inputs=8, max_input_chars=20, max_body_bytes=4000, max_wait_ms=50)
    with TestClient(app) as c:
        yield c


def test_predict_gives_what_the_python_api_gives(client, model):
    r = client.post("/v1/predict", json={"inputs": WORDS})
    assert r.status_code == 200 and r.json() == {"outputs": model.predict(WORDS)}
    r = client.post("/v1/predict", json={"inputs": WORDS, "beam": 3})
    assert r.json()["outputs"] == model.predict(WORDS, beam=3)


def test_n_best_with_scores_and_attention(client, model):
    r = client.post(
        "/v1/predict", json={"inputs": WORDS, "beam": 3, "n_best": 3, "attention": True}
    )
    body = r.json()
    assert body["outputs"] == model.predict(WORDS, beam=3)
    for word, hyps in zip(WORDS, body["hypotheses"], strict=True):
        scores = [h["score"] for h in hyps]
        assert 1 <= len(hyps) <= 3 and scores == sorted(scores, reverse=True)
        for h in hyps:
            att = h["attention"]
            assert att["source"] == word.split() and att["output"] == h["output"].split()
            w = np.array(att["weights"]).reshape(len(att["output"]), len(att["source"]))
            np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-3)


def test_scores_alone_come_without_weights(client):
    body = client.post("/v1/predict", json={"inputs": WORDS[:2], "scores": True}).json()
    assert all(set(h[0]) == {"output", "score"} for h in body["hypotheses"])


def test_unknown_symbols_are_handled_as_in_predict(client, model):
    words = ["a z q", "zz"]  # z, q, zz: not in the vocabulary (<unk>)
    assert client.post("/v1/predict", json={"inputs": words}).json()["outputs"] == model.predict(
        words
    )


def test_model_info_and_health(client, model):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/model").json()
    assert info["kind"] == "tokens" and info["family"] == "lstm_attention" and info["attention"]
    assert info["vocabularies"]["source"] == model.codec.source.vocab.tokens
    assert info["accepts"]["max_inputs"] == 8 and info["sizes"]["dec_hidden"] == 16
    assert client.get("/docs").status_code == 200
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    "body,status,named",
    [
        (b'{"inputs": ["a b"', 400, "malformed JSON"),
        (b"not json at all", 400, "malformed JSON"),
        (b'{"inputs": "a b"}', 422, "inputs"),
        (b'{"inputs": []}', 422, "inputs"),
        (b'{"inputs": ["a"], "beam": 0}', 422, "beam"),
        (b'{"inputs": ["a"], "beam": 99}', 422, "max_beam=16"),
        (b'{"inputs": ["a"], "beam": 2, "n_best": 3}', 422, "n_best 3"),
        (b'{"inputs": ["a", "a", "a", "a", "a", "a", "a", "a", "a"]}', 422, "max_inputs=8"),
        (b'{"inputs": ["a b c d e f a b c d e f"]}', 422, "max_input_chars=20"),
        (b'{"inputs": ["a", ""]}', 422, "input 2: empty input"),
        (b'{"inputs": ["' + b"a " * 3000 + b'"]}', 413, "max_body_bytes=4000"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_limit(client, body, status, named):
    r = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and named in str(r.json()["detail"])
    assert client.get("/healthz").status_code == 200  # and the server is still there


def test_a_streamed_body_over_the_limit_is_refused(client):
    chunks = (b"x" * 1000 for _ in range(10))  # chunked: no Content-Length to go by
    r = client.post("/v1/predict", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes=4000" in r.json()["detail"]


def _post_at_once(client, bodies: list[dict]) -> list:
    answers: list = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def post(i: int) -> None:
        start.wait()
        answers[i] = client.post("/v1/predict", json=bodies[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return answers


def test_concurrent_clients_are_batched_and_get_their_own_answers(client, model):
    calls_before = sum(client.app.state.batcher.calls.values())
    bodies = [{"inputs": [WORDS[i % 6], WORDS[(i + 1) % 6]]} for i in range(12)]
    bodies[5] = {"inputs": ["a", ""]}  # a bad one shares the batch and fails alone
    answers = _post_at_once(client, bodies)
    for i, (body, r) in enumerate(zip(bodies, answers, strict=True)):
        if i == 5:
            assert r.status_code == 422 and "empty input" in r.json()["detail"]
        else:
            assert r.status_code == 200 and r.json()["outputs"] == model.predict(body["inputs"])
    calls = client.app.state.batcher.calls
    assert max(calls) > 2  # some decoder call took more than one request's inputs
    assert sum(calls.values()) - calls_before < 12


def test_without_batching_each_request_is_one_call(run, model):
    with TestClient(create_app(run, max_batch=1)) as c:
        answers = _post_at_once(c, [{"inputs": [w]} for w in WORDS])
        assert [r.json()["outputs"][0] for r in answers] == model.predict(WORDS)
        assert set(c.app.state.batcher.calls) == {1}


def test_batcher_groups_by_parameters_and_keeps_the_loop_answering():
    seen: list[tuple] = []

    def run(inputs, key):
        seen.append((key, len(inputs)))
        time.sleep(0.05)  # a decoder call, in a worker thread
        return [f"{key}:{x}" for x in inputs]

    async def main():
        batcher = MicroBatcher(run, max_batch=4, max_wait_ms=20)
        batcher.start()
        jobs = [batcher.submit([i], ("k", i % 2)) for i in range(6)]
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticker = asyncio.create_task(tick())
        results = await asyncio.gather(*jobs)
        ticker.cancel()
        await batcher.stop()
        return results, ticks

    results, ticks = asyncio.run(main())
    assert results == [[f"('k', {i % 2}):{i}"] for i in range(6)]
    assert sorted(n for _, n in seen) == [3, 3] and ticks >= 10


# ---- forecasts ----------------------------------------------------------------------------------
pd = pytest.importorskip("pandas")


def monthly(n: int = 36) -> pd.DataFrame:
    times = pd.date_range("2019-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    rows = [
        (sid, t, 50 + 10 * np.sin(i / 2) + k * 5)
        for k, sid in enumerate(["north", "south"])
        for i, t in enumerate(times)
    ]
    return pd.DataFrame(rows, columns=["id", "time", "target"])


@pytest.fixture(scope="module")
def forecaster_run(tmp_path_factory):
    pytest.importorskip("statsmodels")
    from hybridseq.forecast import fit_forecaster

    out = tmp_path_factory.mktemp("forecast")
    model = {"family": "hybrid", "d_model": 16, "heads": 2, "ff_dim": 16, "enc_layers": 1}
    model.update(dec_hidden=16, dec_layers=1, dropout=0.0, quantiles=[0.1, 0.5, 0.9])
    train = {"batch_size": 32, "max_steps": 10, "eval_every": 10, "lr": 0.005}
    train.update(loss="quantile", metrics=["mae"], select="mae", threads=1, progress=False)
    config = {"forecast": {"horizon": 3, "lookback": 8}, "model": model, "train": train}
    torch.manual_seed(0)
    fit_forecaster(monthly(), config, out, log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def fclient(forecaster_run):
    with TestClient(create_app(forecaster_run)) as c:
        yield c


def test_forecast_from_a_csv_upload_in_the_series_dates(fclient):
    csv = monthly().to_csv(index=False).encode()
    r = fclient.post("/v1/forecast", files={"file": ("sales.csv", csv, "text/csv")})
    body = r.json()
    assert r.status_code == 200 and body["quantiles"] == [0.1, 0.5, 0.9]
    assert body["columns"] == ["series", "step", "time", "forecast", "q0.1", "q0.5", "q0.9"]
    north = [row for row in body["rows"] if row["series"] == "north"]
    assert [row["time"] for row in north] == ["2022-01-01", "2022-02-01", "2022-03-01"]
    assert all(row["q0.1"] <= row["forecast"] <= row["q0.9"] for row in north)
    plot = body["series"][0]
    assert plot["history"]["time"][-1] == "2021-12-01" and len(plot["upper"]) == 3
    table = fclient.post(
        "/v1/forecast?format=csv", files={"file": ("sales.csv", csv, "text/csv")}
    ).text
    assert table.splitlines()[0] == "series,step,time,forecast,q0.1,q0.5,q0.9"


def test_forecast_from_json_matches_the_csv_and_takes_integer_times(fclient):
    frame = monthly()
    north = frame[frame["id"] == "north"]
    series = {"id": "north", "values": north["target"].tolist(), "time": list(range(10, 46))}
    body = fclient.post("/v1/forecast", json={"series": [series]}).json()
    assert [row["time"] for row in body["rows"]] == [46, 47, 48]
    csv = fclient.post("/v1/forecast", files={"file": ("s.csv", north.to_csv(index=False))})
    assert [r["forecast"] for r in csv.json()["rows"]] == pytest.approx(
        [r["forecast"] for r in body["rows"]]
    )


@pytest.mark.parametrize(
    "kwargs,status,named",
    [
        ({"json": {"series": [{"id": "tiny", "values": [1.0, 2.0]}]}}, 422, "'tiny'"),
        ({"json": {"series": []}}, 422, "series"),
        ({"content": b"{oops", "headers": {"content-type": "application/json"}}, 400, "JSON"),
        ({"files": {"file": ("x.csv", b"id,time\na,1\n")}}, 422, "target"),
        ({"files": {"other": ("x.csv", b"id,time\n")}}, 422, "'file'"),
    ],
)
def test_bad_series_are_a_4xx_naming_the_series_or_column(fclient, kwargs, status, named):
    r = fclient.post("/v1/forecast", **kwargs)
    assert r.status_code == status and named in str(r.json()["detail"])


def test_each_server_refuses_the_other_kind(client, fclient):
    assert client.post("/v1/forecast", json={"series": []}).status_code == 404
    assert fclient.post("/v1/predict", json={"inputs": ["a"]}).status_code == 404
    assert fclient.get("/v1/model").json()["forecast"]["horizon"] == 3


def test_next_times_follow_the_frequency():
    days = np.array(["2024-01-29", "2024-01-30", "2024-01-31"], dtype="datetime64[ns]")
    assert next_times(days, 3, 2) == ["2024-02-01", "2024-02-02"]
    quarters = pd.date_range("2020-03-31", periods=4, freq="QE").to_numpy()
    assert next_times(quarters, 4, 1) == ["2021-03-31"]
    assert next_times(np.array([0, 5, 10]), 3, 2) == [15, 20]
    assert next_times(np.array([1, 2, 3, 4, 5]), 3, 2) == [4, 5]  # the table's own future rows


def test_an_export_is_served_as_its_run(run, model, tmp_path):
    pytest.importorskip("onnxruntime")
    from hybridseq.export import export

    export(run, tmp_path / "export")
    with TestClient(create_app(tmp_path / "export")) as c:
        assert c.get("/v1/model").json()["engine"] == "onnxruntime"
        body = c.post("/v1/predict", json={"inputs": WORDS, "beam": 3, "attention": True}).json()
        assert body["outputs"] == model.predict(WORDS, beam=3)
        expected = model.predict(WORDS, beam=3, attention=True)
        for hyps, preds in zip(body["hypotheses"], expected, strict=True):
            want = preds[0].alignment.weights  # (T, S); JSON drops the shape of T = 0
            got = np.array(hyps[0]["attention"]["weights"]).reshape(want.shape)
            np.testing.assert_allclose(got, want, atol=1e-3)
