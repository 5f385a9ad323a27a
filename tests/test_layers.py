"""The architecture's contracts: the serving path never loads the reader lab, layers point one
way, and no module outgrows one concept."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from rag.config import PROJECT_ROOT

PACKAGES = ("embeddings", "rag", "api", "eval")
LAB = ("rag.training", "eval", "sklearn", "matplotlib")
# Which packages each layer may import (the arrows of docs/architecture.md).
ALLOWED = {
    "embeddings": {"embeddings"},
    "rag": {"rag", "embeddings"},
    "api": {"api", "rag"},
    "eval": {"eval", "rag", "embeddings"},
}
MAX_LINES = 400


def _modules_loaded_by(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    code += "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_serving_imports_no_training_evaluation_or_plotting() -> None:
    loaded = _modules_loaded_by(
        "from api.app import create_app\n"
        "from rag.config import Settings\n"
        "from rag.pipeline import AskPipeline, make_reader\n"
        "from rag.readers.span import SpanReader\n"
        "from rag.readers.sentence import SentenceReader\n"
        "create_app(Settings())\n"
    )
    leaked = [m for m in loaded if any(m == lab or m.startswith(lab + ".") for lab in LAB)]
    assert leaked == []


def test_settings_load_no_vector_engine() -> None:
    # Settings take their index defaults from embeddings.index_params, not from the engines.
    assert {"faiss", "pymilvus"} & set(_modules_loaded_by("import rag.config")) == set()


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(PACKAGES)


def test_layers_import_only_downwards() -> None:
    wrong = [
        f"{path.relative_to(PROJECT_ROOT)} imports {sorted(_imports(path) - ALLOWED[package])}"
        for package in PACKAGES
        for path in (PROJECT_ROOT / package).rglob("*.py")
        if _imports(path) - ALLOWED[package]
    ]
    assert wrong == []


def test_runtime_readers_never_import_the_lab() -> None:
    runtime = [*(PROJECT_ROOT / "rag" / "readers").rglob("*.py"), PROJECT_ROOT / "rag/pipeline.py"]
    for path in runtime:
        text = path.read_text(encoding="utf-8")
        assert "rag.training" not in text and "sklearn" not in text, path


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(PROJECT_ROOT)): n
        for package in PACKAGES
        for p in (PROJECT_ROOT / package).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
