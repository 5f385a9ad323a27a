"""Two readers through the whole ask pipeline at every abstention threshold, on all of
`verbatim squad-ask`'s held-out questions (issue 14): is a reader's squad-ask loss its reading or
the operating point its calibration picks?

    .venv/bin/python docs/studies/operating_point.py models/reader wip-gpu-readers/gpu-ref

Each reader is asked every question twice at threshold 1 (so it never answers): with the first
read only, and with the second read always on. The service at threshold t answers with the first
read's best span when its score is at least t, else with the combined reading's when that is, else
refuses; the study replays that for every t. Its row at the reader's calibrated threshold is the
one `verbatim squad-ask --limit 0 --second-pass 7` prints.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from eval.squad_ask import NOANS_SHARE, held_out_pipeline
from rag.answer import Answer
from rag.config import get_settings
from rag.training.squad import exact_match, token_f1

GRID = [round(0.01 * i, 2) for i in range(0, 61)]


@dataclass
class Read:
    """The best span of one reading and its calibrated score."""

    text: str
    score: float


def best(answer: Answer) -> Read:
    spans = answer.alternatives if answer.abstained else answer.citations
    return Read(spans[0].text if spans else "", answer.score if spans else 0.0)


def readings(folder: Path, limit: int) -> list[tuple[list[str], Read, Read]]:
    """Per question: the gold answers ([] unanswerable), the first read, the combined read."""
    base = get_settings()
    model = {"reader_model": folder, "abstain_threshold": 1.0}
    with held_out_pipeline(base, limit, 13, **model) as (pipe, probes):
        first = pipe.with_settings(second_pass_top_k=0)
        deep = pipe.with_settings(second_pass_top_k=base.second_pass_top_k)
        return [
            (list(p.answers), best(first.ask(p.question)), best(deep.ask(p.question)))
            for p in probes
        ]


def at(rows: list[tuple[list[str], Read, Read]], t: float) -> dict[str, float]:
    """squad-ask's figures for the service at threshold ``t``."""
    has, no = [], []
    for golds, first, deep in rows:
        chosen = first if first.score >= t else deep if deep.score >= t else None
        text = chosen.text if chosen else ""
        if golds:
            has.append((exact_match(text, golds), token_f1(text, golds), chosen is None))
        else:
            no.append(chosen is None)
    f1 = statistics.fmean(f for _, f, _ in has)
    refused_no = statistics.fmean(no)
    return {
        "threshold": t,
        "has_ans_em": round(statistics.fmean(e for e, _, _ in has), 4),
        "has_ans_f1": round(f1, 4),
        "answerable_refused": round(statistics.fmean(r for *_, r in has), 4),
        "unanswerable_refused": round(refused_no, 4),
        "f1_at_20pct_unanswerable": round((1 - NOANS_SHARE) * f1 + NOANS_SHARE * refused_no, 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("readers", nargs="+", type=Path, help="calibrated reader folders")
    p.add_argument("--limit", type=int, default=0, help="questions (0: all, as squad-ask)")
    p.add_argument("--out", type=Path, default=Path("eval/out/operating-point.json"))
    args = p.parse_args()
    report = {}
    for folder in args.readers:
        calibrated = json.loads((folder / "calibration.json").read_text())["threshold"]
        rows = readings(folder.resolve(), args.limit)
        curve = [at(rows, t) for t in sorted({*GRID, calibrated})]
        report[str(folder)] = {"calibrated": calibrated, "curve": curve}
        print(folder, "at its calibrated threshold:", json.dumps(at(rows, calibrated)), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
