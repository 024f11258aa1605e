"""Attention heatmaps: a drawn Alignment, and ``predict --attention DIR`` writing one PNG per
input line, numbered by line, across streamed chunks, for both families, greedy and beam."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_train_dict

pytest.importorskip("matplotlib")

from hybridseq import api, cli  # noqa: E402
from hybridseq.heatmap import draw, file_name  # noqa: E402
from hybridseq.predict import Alignment  # noqa: E402

PNG = b"\x89PNG"


def test_draw_writes_a_png_and_checks_the_shape(tmp_path):
    weights = np.full((3, 4), 0.25, dtype=np.float32)
    path = draw(Alignment(list("abcd"), ["x", "y", " "], weights), tmp_path / "a.png")
    assert path.read_bytes()[:4] == PNG
    with pytest.raises(ValueError, match=r"\(3, 4\) do not match 2 output x 4 source"):
        draw(Alignment(list("abcd"), ["x", "y"], weights), tmp_path / "b.png")
    assert file_name(7) == "0007.png" and file_name(12345) == "12345.png"
    empty = draw(Alignment(["a"], [], np.zeros((0, 1), np.float32)), tmp_path / "c.png")
    assert empty.read_bytes()[:4] == PNG  # an empty output still shows its source


@pytest.fixture(scope="module", params=["lstm_attention", "hybrid"])
def run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    api.train(tiny_train_dict(family=request.param, steps=10), out, log=lambda _: None)
    return out


@pytest.mark.parametrize("beam", ["1", "3"])
def test_predict_attention_writes_one_png_per_input(run, beam, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "PREDICT_CHUNK", 2)  # line numbers carry across chunks
    inputs = tmp_path / "in.txt"
    inputs.write_text("a b c\nb c\n\nc a b a\n")
    maps = tmp_path / "maps" / "new"  # created, parents too
    cli.main(["predict", str(run), str(inputs), "--beam", beam, "--attention", str(maps)])
    outputs = capsys.readouterr().out.splitlines()
    plain = api.load(run).predict(["a b c", "b c", "c a b a"], beam=int(beam))
    assert outputs == [plain[0], plain[1], "", plain[2]]  # the chosen hypothesis is the output
    assert sorted(p.name for p in maps.iterdir()) == ["0001.png", "0002.png", "0004.png"]
    assert all(p.read_bytes()[:4] == PNG for p in maps.iterdir())


def test_attention_is_refused_for_vector_targets(tmp_path, capsys):
    raw = tiny_train_dict(task="sines", steps=2)
    api.train(raw, tmp_path / "run", log=lambda _: None)
    with pytest.raises(SystemExit):
        cli.main(["predict", str(tmp_path / "run"), "--attention", str(tmp_path / "maps")])
    assert "--attention is for models with a token target" in capsys.readouterr().err
    assert not (tmp_path / "maps").exists()
