"""The reader's model card is one page and names the shipped weights; its training record holds."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READER = ROOT / "models" / "reader"
CARD = READER / "README.md"
RECORD = READER / "training.json"
SHA_LINE = re.compile(r"^sha256\b.*?\b([0-9a-f]{64})\b", re.MULTILINE)


def _weights_sha256() -> str:
    h = hashlib.sha256()
    with (READER / "model.safetensors").open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_card_and_training_record_name_the_shipped_weights():
    card = CARD.read_text()
    found = SHA_LINE.findall(card)
    assert len(found) == 1, f"want one line starting with sha256 and a 64-hex digest: {found}"
    assert len(re.findall(r"\b[0-9a-f]{64}\b", card)) == 1, "the full sha256 appears once"
    sha = _weights_sha256()
    assert found[0] == sha
    assert json.loads(RECORD.read_text())["model_sha256"] == sha


def test_card_is_one_page():
    assert len(CARD.read_text().splitlines()) <= 150


def _check_lineage(record: dict) -> None:
    if "averaged" in record:
        # `verbatim average-readers`: each parent's record, kept whole, has its own history
        assert len(record["averaged"]) >= 2
        for parent in record["averaged"]:
            _check_lineage(parent["record"])
        return
    lineage = record.get("lineage")
    if not lineage:
        # one run from the pretrained encoder (its package folder, "", or a copy of it): the
        # record is the whole history; a run started from a reader stage must list its lineage
        base = Path(record["config"]["base_model"])
        assert base.name != "reader" and not (base / "training.json").is_file(), base
        return
    missing = [p for p in lineage if not (ROOT / p).is_file()]
    assert not missing, missing


def test_training_record_lineage_exists():
    _check_lineage(json.loads(RECORD.read_text()))
