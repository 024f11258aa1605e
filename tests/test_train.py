"""Training: schedules, a short run that learns, checkpoints that round-trip without pickle,
atomic saves, and a resumed run that continues exactly where it stopped."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch
from conftest import tiny_train_dict
from safetensors.torch import load_file

import hybridseq.checkpoint as ckpt
from hybridseq import api
from hybridseq.checkpoint import CheckpointError, load_checkpoint
from hybridseq.cli import main as cli_main
from hybridseq.config import ConfigError, TrainConfig
from hybridseq.data import DataError, collate
from hybridseq.losses import sequence_loss
from hybridseq.training import lr_factor, teacher_forcing_ratio


@pytest.mark.parametrize(
    "schedule,k", [("linear", 50.0), ("exponential", 0.95), ("inverse_sigmoid", 10.0)]
)
def test_scheduled_sampling_decays_from_start_to_floor(schedule, k):
    cfg = TrainConfig(sampling_schedule=schedule, sampling_k=k, min_teacher_forcing=0.2)
    ratios = [teacher_forcing_ratio(cfg, s) for s in range(0, 500, 5)]
    assert all(a >= b for a, b in zip(ratios, ratios[1:], strict=False))
    assert ratios[0] <= 1.0 and ratios[0] > 0.9
    assert ratios[-1] == pytest.approx(0.2)
    assert teacher_forcing_ratio(TrainConfig(), 10_000) == 1.0


def test_lr_warms_up_then_decays():
    cfg = TrainConfig(warmup_steps=10, decay="cosine", max_steps=110, min_lr_ratio=0.1)
    f = [lr_factor(cfg, s) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[-1] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))


def test_lr_decay_can_follow_the_time_budget():
    cfg = TrainConfig(
        warmup_steps=10, decay="linear", max_minutes=30, decay_horizon="minutes", min_lr_ratio=0.0
    )
    assert lr_factor(cfg, 5000, minutes=0.0) == pytest.approx(1.0)
    assert lr_factor(cfg, 5, minutes=15.0) == pytest.approx(0.6)  # still warming up
    assert lr_factor(cfg, 50, minutes=15.0) == pytest.approx(0.5)
    assert lr_factor(cfg, 50, minutes=31.0) == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="max_minutes"):
        TrainConfig(decay_horizon="minutes")


@pytest.mark.parametrize(
    "task,family", [("reverse", "lstm_attention"), ("reverse", "hybrid"), ("sines", "hybrid")]
)
def test_short_run_learns_and_checkpoint_round_trips(tmp_path, task, family):
    raw = tiny_train_dict(task, family, steps=40)
    result = api.train(raw, tmp_path, log=lambda m: None)
    first, last = result.history[0]["loss"], result.history[-1]["loss"]
    assert last < first
    model = api.load(tmp_path / "best")
    cfg, net, codec = load_checkpoint(tmp_path / "best")
    again = api.load(tmp_path)  # a run directory means its best checkpoint
    sources = [s for s, _ in api.synth(task, 3, seed=7, **_synth_kw(raw))]
    a, b = model.predict(sources), again.predict(sources)
    if task == "sines":
        assert a[0].shape == (3, 1)
        torch.testing.assert_close(torch.tensor(a[0]), torch.tensor(b[0]))
    else:
        assert a == b
    assert cfg.model.src_vocab == len(codec.source.vocab) if codec.source.is_tokens else True


def _synth_kw(raw: dict) -> dict:
    s = raw["data"]["synth"]
    if s["task"] == "sines":
        return {"src_len": s["src_len"], "tgt_len": s["tgt_len"]}
    return {"min_len": s["min_len"], "max_len": s["max_len"], "vocab": s["vocab"]}


def test_checkpoint_files_load_without_pickle(tmp_path):
    api.train(tiny_train_dict(steps=10), tmp_path, log=lambda m: None)
    last = tmp_path / "last"
    assert set(ckpt.FILES) <= {p.name for p in last.iterdir()}
    load_file(str(last / "model.safetensors"))
    state = torch.load(last / "trainer.pt", weights_only=True)  # refuses arbitrary objects
    assert state["step"] == 10


def test_interrupted_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    api.train(tiny_train_dict(steps=10), tmp_path, log=lambda m: None)
    cfg, model, codec = load_checkpoint(tmp_path / "last")
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", crash)
    for p in model.parameters():
        p.data.add_(1.0)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path / "last", cfg, model, codec)
    _, reloaded, _ = load_checkpoint(tmp_path / "last")
    for k, v in reloaded.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_missing_checkpoint_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nothing")
    api.train(tiny_train_dict(steps=10), tmp_path, log=lambda m: None)
    (tmp_path / "best" / "codec.json").unlink()
    with pytest.raises(CheckpointError, match="missing codec.json"):
        load_checkpoint(tmp_path / "best")


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    """20 steps straight == 10 steps, stop, resume to 20: same weights, bit for bit."""
    straight = tiny_train_dict(steps=20)
    api.train(straight, tmp_path / "a", log=lambda m: None)
    api.train(tiny_train_dict(steps=10), tmp_path / "b", log=lambda m: None)
    api.train(straight, tmp_path / "b", resume=True, log=lambda m: None)
    wa = load_file(str(tmp_path / "a" / "last" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "last" / "model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)


def test_scheduled_sampling_run_trains(tmp_path):
    raw = tiny_train_dict(steps=20)
    raw["train"].update(sampling_schedule="linear", sampling_k=20.0, label_smoothing=0.1)
    result = api.train(raw, tmp_path, log=lambda m: None)
    assert result.step == 20


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_saves_at_the_step_boundary_and_resume_is_exact(
    tmp_path, monkeypatch, signum
):
    """The signal lands inside step 7's forward pass: the step finishes, ``last`` holds step 7,
    and the resumed run ends with the weights of a run never stopped, bit for bit."""
    import hybridseq.training as T

    quiet = lambda m: None  # noqa: E731
    straight = api.train(tiny_train_dict(steps=12), tmp_path / "straight", log=quiet)
    real, calls = T.sequence_loss, {"n": 0}

    def signal_in_7th(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "sequence_loss", signal_in_7th)
    result = api.train(tiny_train_dict(steps=12), tmp_path / "run", log=quiet)
    assert result.interrupted and result.signum == signum and result.step == 7
    assert torch.load(tmp_path / "run" / "last" / "trainer.pt", weights_only=True)["step"] == 7
    monkeypatch.setattr(T, "sequence_loss", real)
    resumed = api.train(tiny_train_dict(steps=12), tmp_path / "run", resume=True, log=quiet)
    assert resumed.step == straight.step == 12 and not resumed.interrupted
    w1 = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    w2 = load_file(str(tmp_path / "run" / "last" / "model.safetensors"))
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_pinball_loss_by_hand():
    # one sequence of 2 steps, 1 variable, levels 0.1 and 0.9; the second step is padding
    target = torch.tensor([[2.0], [5.0]])
    batch = collate([(torch.zeros(1, 1), target[:1]), (torch.zeros(1, 1), target)], [0, 1])
    out = torch.tensor([[[[1.0, 4.0]], [[0.0, 0.0]]], [[[3.0, 3.0]], [[6.0, 7.0]]]])  # (B, T, D, Q)
    # max(tau u, (tau - 1) u) with u = y - q, per (position, level); row 0's step 2 is padding:
    # y=2: q=1 (tau .1) -> .1, q=4 (tau .9) -> .2 | y=2: q=3 -> .9, q=3 -> .1 | y=5: q=6 -> .9,
    # q=7 -> .2
    by_hand = (0.1 + 0.2 + 0.9 + 0.1 + 0.9 + 0.2) / 6
    loss = sequence_loss(out, batch, "quantile", quantiles=[0.1, 0.9])
    assert float(loss) == pytest.approx(by_hand)


def test_quantile_run_trains_and_predicts_every_level(tmp_path):
    raw = tiny_train_dict("sines", "hybrid", steps=20)
    raw["model"]["quantiles"] = [0.1, 0.5, 0.9]  # train.loss auto: the pinball loss
    # sampling feeds the point back; validate_first scores the untrained model at step 0
    raw["train"].update(metrics=["mae"], teacher_forcing=0.5, validate_first=True)
    result = api.train(raw, tmp_path, log=lambda m: None)
    assert result.history[0]["step"] == 0
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert set(result.history[-1]) == {"step", "loss", "mae"}
    model = api.load(tmp_path)
    sources = [s for s, _ in api.synth("sines", 2, seed=7, **_synth_kw(raw))]
    pred = model.predict(sources)[0]
    assert pred.shape == (3, 1, 3) and (pred[..., 1:] >= pred[..., :-1]).all()


def test_relative_error_losses_by_hand():
    from hybridseq.losses import pointwise_error

    pred, target = torch.tensor([1.5, 0.5, 2.0]), torch.tensor([1.0, 1.0, 4.0])
    assert pointwise_error(pred, target, "mape").tolist() == pytest.approx([0.5, 0.5, 0.5])
    smape = [2 * 0.5 / 2.5, 2 * 0.5 / 1.5, 2 * 2.0 / 6.0]
    assert pointwise_error(pred, target, "smape").tolist() == pytest.approx(smape)
    assert pointwise_error(pred, target, "mae").tolist() == pytest.approx([0.5, 0.5, 2.0])
    # a negative prediction of a positive target still gets a gradient towards it (a model
    # whose first outputs were all negative stayed at smape 200 % when the denominator had one)
    neg = torch.tensor([-0.5], requires_grad=True)
    pointwise_error(neg, torch.ones(1), "smape").sum().backward()
    assert neg.grad.item() < 0
    # a zero target is left out of mape (undefined there), not a division by zero
    assert pointwise_error(torch.ones(1), torch.zeros(1), "mape").tolist() == [0.0]


def test_run_with_covariates_trains_and_predicts_with_them(tmp_path):
    """Targets that copy the covariates of their step: learnable only through the covariates."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(200):
        cov = rng.normal(size=(3, 1))
        lines.append(
            {
                "source": rng.normal(size=(4, 1)).tolist(),
                "target": cov.tolist(),
                "covariates": cov.tolist(),
            }
        )
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    raw = tiny_train_dict("sines", "hybrid", steps=30)
    raw["data"] = {"train": str(tmp_path / "train.jsonl")}
    raw["train"]["metrics"] = ["mae"]
    result = api.train(raw, tmp_path / "run", log=lambda m: None)
    assert result.history[-1]["mae"] < result.history[0]["mae"]
    model = api.load(tmp_path / "run")
    assert model.config.model.tgt_cov_dim == 1 and model.config.model.src_dim == 1
    sources, covs = [np.zeros((4, 1))] * 2, [rng.normal(size=(5, 1)), rng.normal(size=(2, 1))]
    pred = model.predict(sources, covariates=covs)
    assert [p.shape for p in pred] == [(5, 1), (2, 1)]  # the covariates set the steps
    with pytest.raises(DataError, match=r"needs covariates \(steps, 1\) for each of the 2 sources"):
        model.predict(sources)
    # the command line reads them from a file, one JSON list per input line
    inputs, cov_file = tmp_path / "in.jsonl", tmp_path / "cov.jsonl"
    inputs.write_text("".join(json.dumps(s.tolist()) + "\n" for s in sources))
    cov_file.write_text("".join(json.dumps(c.tolist()) + "\n" for c in covs))
    out = tmp_path / "out.jsonl"
    cli_main(
        [
            "predict",
            str(tmp_path / "run"),
            str(inputs),
            "--covariates",
            str(cov_file),
            "--output",
            str(out),
        ]
    )
    rows = [np.asarray(json.loads(line)) for line in out.read_text().splitlines()]
    assert [r.shape for r in rows] == [(5, 1), (2, 1)]
    np.testing.assert_allclose(rows[1], pred[1], rtol=1e-5, atol=1e-6)


def test_weight_average_follows_the_ramped_decay_by_hand():
    from hybridseq.training import weight_average

    net = torch.nn.Linear(1, 1, bias=False)
    ema = weight_average(net, 0.9)
    expected = None
    for n, value in enumerate([1.0, 3.0, -2.0, 5.0, 0.5]):
        net.weight.data.fill_(value)
        ema.update_parameters(net)
        d = min(0.9, (1 + n) / (10 + n))
        expected = value if expected is None else d * expected + (1 - d) * value
        assert ema.module.weight.item() == pytest.approx(expected)
    assert weight_average(net, 0.0) is None
    with pytest.raises(ConfigError, match="train.ema"):
        TrainConfig(ema=1.0)


def test_resume_with_weight_average_continues_exactly(tmp_path):
    """With train.ema the checkpoints hold the average and trainer.pt the trained weights;
    10 steps + resume to 20 equals 20 straight in both."""

    def run(steps):
        raw = tiny_train_dict(steps=steps)
        raw["train"]["ema"] = 0.8
        return raw

    api.train(run(20), tmp_path / "a", log=lambda m: None)
    api.train(run(10), tmp_path / "b", log=lambda m: None)
    api.train(run(20), tmp_path / "b", resume=True, log=lambda m: None)
    for name in ("a", "b"):
        avg = load_file(str(tmp_path / name / "last" / "model.safetensors"))
        trained = torch.load(tmp_path / name / "last" / "trainer.pt", weights_only=True)
        assert trained["ema_updates"] == 20
        assert any(not torch.equal(avg[k], trained["train_weights"][k]) for k in avg)
    wa = load_file(str(tmp_path / "a" / "last" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "last" / "model.safetensors"))
    ta = torch.load(tmp_path / "a" / "last" / "trainer.pt", weights_only=True)["train_weights"]
    tb = torch.load(tmp_path / "b" / "last" / "trainer.pt", weights_only=True)["train_weights"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)
        torch.testing.assert_close(ta[k], tb[k], rtol=0, atol=0)


@pytest.mark.parametrize(
    "family,model",
    [("lstm_attention", {}), ("lstm_attention", {"input_feed": False}), ("hybrid", {})],
)
def test_bfloat16_precision_trains_through_a_bf16_forward_with_float32_weights(
    tmp_path, monkeypatch, family, model
):
    from hybridseq.model import Seq2Seq

    seen, forward = [], Seq2Seq.forward

    def recording(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        if self.training:  # validation's forward runs in float32
            seen.append(out.dtype)
        return out

    monkeypatch.setattr(Seq2Seq, "forward", recording)
    raw = tiny_train_dict("reverse", family, steps=40)
    raw["model"].update(model)  # without input feeding the decoder runs as one nn.LSTM call
    raw["train"]["precision"] = "bfloat16"
    raw["train"]["cuda_graphs"] = False  # (on a GPU: every step calls forward)
    result = api.train(raw, tmp_path, log=lambda m: None)
    assert set(seen) == {torch.bfloat16} and len(seen) == 40
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    _, net, _ = load_checkpoint(tmp_path / "best")
    assert {p.dtype for p in net.parameters()} == {torch.float32}
    with pytest.raises(ConfigError, match="train.precision"):
        TrainConfig(precision="float16")


def test_kept_step_checkpoints_average_to_their_mean(tmp_path, capsys):
    raw = tiny_train_dict(steps=20)
    raw["train"].update(eval_every=5, keep_checkpoints=2)
    api.train(raw, tmp_path / "run", log=lambda m: None)
    kept = ckpt.step_checkpoints(tmp_path / "run")
    assert [p.name for p in kept] == ["step-15", "step-20"]  # the older two were pruned
    cli_main(["average", str(tmp_path / "run"), "--last", "2", "--out", str(tmp_path / "avg")])
    assert "averaged 2 checkpoints" in capsys.readouterr().out
    a, b, mean = (load_file(str(p / "model.safetensors")) for p in [*kept, tmp_path / "avg"])
    for k in mean:
        torch.testing.assert_close(mean[k], (a[k] + b[k]) / 2)
    sources = [s for s, _ in api.synth("reverse", 3, seed=7, **_synth_kw(raw))]
    assert len(api.load(tmp_path / "avg").predict(sources)) == 3


def test_averaging_refuses_other_models_and_runs_without_kept_checkpoints(tmp_path, capsys):
    api.train(tiny_train_dict(steps=5), tmp_path / "a", log=lambda m: None)
    other = tiny_train_dict(steps=5)
    other["model"]["dec_hidden"] = 8
    api.train(other, tmp_path / "b", log=lambda m: None)
    with pytest.raises(CheckpointError, match="another model"):
        ckpt.average_checkpoints([tmp_path / "a", tmp_path / "b"], tmp_path / "avg")
    with pytest.raises(SystemExit) as stop:
        cli_main(["average", str(tmp_path / "a"), "--last", "3", "--out", str(tmp_path / "x")])
    assert stop.value.code == 2
    assert "no step-<N> checkpoints" in capsys.readouterr().err
    with pytest.raises(ValueError, match="must be >= 1"):  # last=0 would slice every one
        api.average([tmp_path / "a"], tmp_path / "x", last=0)


def test_accumulated_batches_give_the_gradient_of_their_union(tmp_path):
    """train.accumulate: each batch's loss weighted by its share of the step's target
    positions, so two batches' summed gradient is their union's."""
    from hybridseq import training
    from hybridseq.parallel import World

    raw = tiny_train_dict()
    raw["model"]["dropout"] = 0.0
    t = training.setup(api.as_config(raw), tmp_path, False, lambda m: None, World())
    idx = list(range(12))
    loss_two, n_two = training.accumulate_gradients(t, [idx[:5], idx[5:]], 1.0)
    grads = [p.grad.clone() for p in t.params]
    loss_one, n_one = training.accumulate_gradients(t, [idx], 1.0)
    assert n_two == n_one and float(loss_two) == pytest.approx(float(loss_one), rel=1e-5)
    for g, p in zip(grads, t.params, strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-7)


def test_token_batches_hold_at_most_batch_tokens_positions(tmp_path):
    from hybridseq import training
    from hybridseq.parallel import World

    raw = tiny_train_dict()
    raw["train"].update(batch_tokens=40, batch_size=1000, accumulate=3)
    t = training.setup(api.as_config(raw), tmp_path, False, lambda m: None, World())
    items = t.splits["train"].items
    steps = training.epoch_batches(t)
    batches = [b for step in steps for b in step]
    assert all(len(step) <= 3 for step in steps) and len(steps[0]) == 3
    assert sorted(i for b in batches for i in b) == list(range(len(items)))
    assert all(len(b) * max(len(items[i][0]) + len(items[i][1]) for i in b) <= 40 for b in batches)
