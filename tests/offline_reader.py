"""Reading one known passage in a fresh, offline interpreter (no hub, an empty cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rag.config import PROJECT_ROOT

CODE = """
import json, sys
from rag.answer import Passage
from rag.readers.span import SpanReader
r = SpanReader(sys.argv[1], backend=sys.argv[2]); r.warm_up()
t = 'The lighthouse at Kestrel Point was built in 1874 by Mara Quill.'
p = Passage(doc_id='a', title='a', start=0, end=len(t), text=t, score=1.0)
rd = r.read('When was the lighthouse built?', [p])
print(json.dumps({'text': rd.spans[0].text, 'calibration': r.calibration.source,
                  'torch': 'torch' in sys.modules, 'transformers': 'transformers' in sys.modules}))
"""


def read_offline(folder: Path, backend: str, tmp_path: Path) -> dict:
    """What the reader in ``folder`` answers, and which libraries the interpreter loaded."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),  # an empty cache: nothing to fall back on
        "HF_ENDPOINT": "http://127.0.0.1:9",
    }
    out = subprocess.run(
        [sys.executable, "-c", CODE, str(folder), backend],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
