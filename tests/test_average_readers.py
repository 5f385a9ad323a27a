"""`verbatim average-readers`: the weighted mean of reader folders, with their records kept."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import torch

from rag.readers.model import load_qa_model, load_tokenizer, save_reader_model
from rag.training.average import AverageError, average_readers
from rag.training.cli import register

ROOT = Path(__file__).resolve().parents[1]
READER = ROOT / "models" / "reader"
BIAS = "qa_outputs.bias"


@pytest.fixture(scope="module")
def shifted(tmp_path_factory) -> Path:
    """The shipped reader with its span head's bias raised by 1.0 (a second "run")."""
    out = tmp_path_factory.mktemp("shifted")
    model = load_qa_model(READER)
    with torch.no_grad():
        model.state_dict()[BIAS].add_(1.0)
    save_reader_model(model, load_tokenizer(READER), out)
    shutil.copy(READER / "training.json", out / "training.json")
    return out


def _state(folder: Path) -> dict:
    return load_qa_model(folder).state_dict()


def test_mean_of_two_readers_is_their_weighted_mean(shifted, tmp_path):
    record = average_readers([READER, shifted], tmp_path / "soup", weights=[3, 1])
    base, soup = _state(READER), _state(tmp_path / "soup")
    assert torch.allclose(soup[BIAS], base[BIAS] + 0.25, atol=2e-3)  # fp16 storage
    other = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(soup[other], base[other])
    assert [a["weight"] for a in record["averaged"]] == [0.75, 0.25]
    kept = json.loads((READER / "training.json").read_text())
    assert record["averaged"][0]["record"] == kept
    on_disk = json.loads((tmp_path / "soup" / "training.json").read_text())
    assert on_disk["model_sha256"] == record["model_sha256"]


@pytest.mark.parametrize(
    ("case", "message"),
    [("one", "at least two"), ("weights", "one each"), ("out", "write elsewhere")],
)
def test_refuses_what_it_cannot_average(shifted, tmp_path, case, message):
    folders, weights, out = [READER, shifted], None, tmp_path / "soup"
    if case == "one":
        folders = [READER]
    elif case == "weights":
        weights = [1.0]
    else:
        out = shifted
    with pytest.raises(AverageError, match=message):
        average_readers(folders, out, weights)


def test_refuses_readers_of_another_tokenizer(shifted, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(shifted, other)
    (other / "tokenizer.json").write_text("{}")
    with pytest.raises(AverageError, match="not one base model"):
        average_readers([READER, other], tmp_path / "soup")


def test_command_reports_a_bad_call_as_usage_error(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="verbatim")
    register(parser.add_subparsers(required=True))
    args = parser.parse_args(["average-readers", str(READER), "--out", str(tmp_path / "x")])
    assert args.func(args) == 2
    assert "at least two" in capsys.readouterr().err
