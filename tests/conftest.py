"""Shared fixtures: the real embedding model, a real index over the seeds, the dev questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embeddings.encoder import Encoder
from eval.questions import DEV_QUESTIONS
from rag.config import Settings
from rag.pipeline import AskPipeline

# The service's fixtures (api_app, client, live_server, ...), the reliability suite's figures.
pytest_plugins = ["api_fixtures", "reliability_figures", "browser_support"]


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    enc = Encoder()
    enc.warm_up()
    return enc


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings over the seed corpus with an index in a temporary folder."""
    return Settings(index_dir=tmp_path_factory.mktemp("seed-index") / "index")


@pytest.fixture(scope="session")
def seed_pipeline(seed_settings: Settings, encoder: Encoder) -> AskPipeline:
    pipe = AskPipeline(seed_settings, encoder=encoder)
    pipe.warm_up()
    return pipe


@pytest.fixture(scope="session")
def dev_questions() -> list[dict]:
    return [json.loads(line) for line in DEV_QUESTIONS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """A three-document corpus in a temporary folder (a copy the test may change)."""
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text(
        "Harbour Notes\n\nThe lighthouse at Kestrel Point was built in 1874. "
        "It was designed by the engineer Mara Quill. Its lamp burns whale oil no longer.\n",
        encoding="utf-8",
    )
    (root / "sub" / "b.md").write_text(
        "# Orchard Almanac\n\nThe orchard grows seventeen varieties of pear. "
        "Harvest begins in late September and ends before the first frost.\n",
        encoding="utf-8",
    )
    (root / "c.html").write_text(
        "<html><head><title>River Log</title><style>p{color:red}</style></head><body>"
        "<nav>Home | About</nav><p>The ferry crosses the river nine times a day.</p>"
        "<p>Its captain is Olu Brennan.</p><script>var x = 1;</script></body></html>",
        encoding="utf-8",
    )
    return root
