"""End-to-end figures of the span reader on a question file, through the real :class:`AskPipeline`.

    python -m rag.readers.check_dev --model models/reader [--threshold T] [--questions FILE]

Prints answer EM/F1 (SQuAD normalisation, max over gold answers, an abstention scores 0), the
share of answered questions whose first citation is in an accepted document, refusals of
unanswerable and answerable questions, read/total latency medians, and a threshold sweep over
the recorded scores (for information: the default threshold is chosen on SQuAD held-out data).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from eval.metrics import exact_match, token_f1
from rag.config import PROJECT_ROOT, Settings
from rag.pipeline import AskPipeline
from rag.readers.span import SpanReader

DEV = PROJECT_ROOT / "eval" / "questions" / "dev.jsonl"


def ask_all(pipe: AskPipeline, questions: list[dict], warm: int = 3) -> list[dict]:
    """One record per question: the best candidate (answered or not), its score, timings."""
    for q in questions[:warm]:
        pipe.ask(q["question"])
    records = []
    for q in questions:
        a = pipe.ask(q["question"])
        top = a.citations[0] if a.citations else (a.alternatives[0] if a.alternatives else None)
        records.append(
            {
                "id": q["id"],
                "answerable": q.get("answerable", bool(q.get("answers"))),
                "answers": q.get("answers", []),
                "accepted": [q.get("doc")] + list(q.get("also_in", [])),
                "abstained": a.abstained,
                "score": a.score,
                "text": top.text if top else "",
                "doc": top.doc_id if top else None,
                "read_ms": a.timings_ms.read,
                "total_ms": a.timings_ms.total,
            }
        )
    return records


def figures(records: list[dict], threshold: float) -> dict[str, float]:
    """The dev targets' figures when answering iff ``score >= threshold``."""
    ans = [r for r in records if r["answerable"]]
    una = [r for r in records if not r["answerable"]]
    answered = [r for r in records if r["text"] and r["score"] >= threshold]

    def pred(r: dict) -> str:
        return r["text"] if r["text"] and r["score"] >= threshold else ""

    return {
        "threshold": threshold,
        "em": round(
            sum(exact_match(pred(r), r["answers"]) if pred(r) else 0 for r in ans) / len(ans), 4
        ),
        "f1": round(
            sum(token_f1(pred(r), r["answers"]) if pred(r) else 0 for r in ans) / len(ans), 4
        ),
        "citation_in_accepted_doc": round(
            sum(r["doc"] in r["accepted"] for r in answered) / max(1, len(answered)), 4
        ),
        "citation_in_accepted_doc_answerable": round(
            sum(r["doc"] in r["accepted"] for r in answered if r["answerable"])
            / max(1, sum(r["answerable"] for r in answered)),
            4,
        ),
        "unanswerable_refused": sum(not pred(r) for r in una),
        "unanswerable": len(una),
        "answerable_refused_share": round(sum(not pred(r) for r in ans) / len(ans), 4),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.readers.check_dev", description=__doc__)
    p.add_argument("--model", default=str(PROJECT_ROOT / "models" / "reader"))
    p.add_argument("--questions", default=str(DEV))
    p.add_argument("--threshold", type=float, default=None, help="default: the settings' value")
    p.add_argument("--index-dir", default="", help="default: a temporary folder")
    p.add_argument("--quantize", action="store_true", help="int8 dynamic quantisation")
    p.add_argument("--records", default="", help="write per-question records (JSON)")
    args = p.parse_args(argv)
    questions = [json.loads(x) for x in Path(args.questions).read_text().splitlines() if x.strip()]
    index_dir = Path(args.index_dir or tempfile.mkdtemp(prefix="verbatim-dev-")) / "index"
    overrides = {"reader": "span", "reader_model": args.model, "index_dir": index_dir}
    if args.threshold is not None:
        overrides["abstain_threshold"] = args.threshold
    settings = Settings(**overrides)
    reader = SpanReader.from_settings(settings)
    reader.quantize = args.quantize
    pipe = AskPipeline(settings, reader=reader)
    pipe.warm_up()
    records = ask_all(pipe, questions)
    if args.records:
        Path(args.records).write_text(json.dumps(records, indent=1))
    print(json.dumps(figures(records, settings.abstain_threshold)))
    read = [r["read_ms"] for r in records]
    total = [r["total_ms"] for r in records]
    print(
        f"read ms: median {statistics.median(read):.1f} max {max(read):.1f}; "
        f"total ms: median {statistics.median(total):.1f}"
    )
    print("sweep (information only):")
    for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        print("  " + json.dumps(figures(records, t)))
    for r in records:
        flag = "REFUSED" if r["abstained"] else "       "
        print(f"  {r['id']} {flag} {r['score']:.3f} {r['text'][:50]!r} gold={r['answers'][:2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
