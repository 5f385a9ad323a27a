"""The Dockerfile, the Makefile (the README's commands) and CI install the same things."""

from __future__ import annotations

import re

import tomllib

from rag.config import PROJECT_ROOT

ROOT = PROJECT_ROOT


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_dockerfile_installs_what_the_readme_path_installs():
    docker = (ROOT / "Dockerfile").read_text()
    make = (ROOT / "Makefile").read_text()
    # Both install the project itself (its pyproject dependencies), without extras.
    assert re.search(r"^RUN pip install -e \.$", docker, re.M)
    assert "$(BIN)/pip install --quiet -e .\n" in make
    # The one torch pin is the pyproject's, and the Dockerfile takes the same version.
    pins = [d for d in _pyproject()["project"]["dependencies"] if d.startswith("torch")]
    assert pins == ["torch==2.13.0"]
    assert "torch==2.13.0" in docker
    # Everything the service reads at run time is copied in, and the index is built.
    for folder in ("rag", "embeddings", "api", "eval", "models", "seeds"):
        assert re.search(rf"^COPY {folder} {folder}$", docker, re.M), folder
    assert "RUN verbatim ingest" in docker
    assert "HF_HUB_OFFLINE=1" in docker


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_seeds_are_the_shared_corpus_under_their_own_names():
    names = sorted(p.name for p in (ROOT / "seeds").iterdir())
    assert names == [
        "000_921856a62ede8ee5.txt",
        "001_0de572d7f595036a.txt",
        "002_f41d54b1f0163c00.txt",
        "003_40868c46990d1f75.txt",
        "004_600d39537292fdeb.txt",
    ]
