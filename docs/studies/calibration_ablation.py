"""Does the reader's calibration need a feature? Refit it with features held at 0 (issue 14,
item 5), from the reads ``calibrate-reader --cache`` kept, into a copy of the reader folder:

    verbatim calibrate-reader --model models/reader --limit 2000 --precision fp32 \\
        --cache /tmp/reads.json --dry-run
    python docs/studies/calibration_ablation.py /tmp/reads.json models/reader /tmp/no-rank \\
        --drop passage_rank
    VERBATIM_READER_MODEL=/tmp/no-rank verbatim squad-ask --limit 0 --second-pass 7

The fit and the threshold are chosen as ``calibrate-reader`` chooses them (fit articles; at
most 5 % of answerable questions refused); a feature held at 0 gets weight 0. The copy's
``calibration.json`` is the refit; everything else in it is the reader's."""

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

from rag.readers.calibration import FEATURES
from rag.training.calibrate import (
    PRODUCT,
    CalibrationConfig,
    best_threshold,
    fit,
    metrics,
    read_all,
    split_by_title,
)

parser = argparse.ArgumentParser()
parser.add_argument("cache", type=Path)
parser.add_argument("model", type=Path)
parser.add_argument("out", type=Path)
parser.add_argument("--drop", nargs="*", default=[], choices=FEATURES)
args = parser.parse_args()

reads = read_all(None, None, CalibrationConfig(str(args.model), "", cache=str(args.cache)))  # type: ignore[arg-type]
dropped = [FEATURES.index(name) for name in args.drop]
for rd in reads:
    rd.rows = [
        replace(r, features=tuple(0.0 if i in dropped else f for i, f in enumerate(r.features)))
        for r in rd.rows
    ]
fit_reads, test_reads = split_by_title(reads)
cal = fit(fit_reads)
threshold = best_threshold([r for r in fit_reads if r.setting in PRODUCT], cal, 0.2, 0.05)
cal = replace(cal, threshold=threshold)
test = metrics([r for r in test_reads if r.setting in PRODUCT], cal, threshold, 0.2)
print(f"dropped {args.drop or 'nothing'}: threshold {threshold}")
print("weights " + ", ".join(f"{n} {w:.3f}" for n, w in zip(FEATURES, cal.weights, strict=True)))
print("test articles (mixed + absent): " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()))
if args.out.exists():
    shutil.rmtree(args.out)
shutil.copytree(args.model, args.out)
cal.save(args.out, {"ablation": {"dropped": args.drop, "test": test}})
