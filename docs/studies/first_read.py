"""Study (docs/studies/first-read.md): read a question's first passages alone, the rest only
when unsure (reader_first_passages, reader_first_accept), on the held-out SQuAD questions of
`verbatim squad-ask`: quality and the reader tokens each configuration forwards (counted, so
free of the machine's noise).

    .venv/bin/python docs/studies/first_read.py [--limit 1000] [--seed 7] [--precision fp32]
        [--configs 0:0,2:0.9]
"""

from __future__ import annotations

import argparse
import json
import time

from eval.squad_ask import held_out_pipeline, score, summarise
from rag.config import get_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--precision", default="auto", help="the reader's (fp32: no int8 noise)")
    ap.add_argument("--configs", default="0:0,1:0.9,2:0.5,2:0.7,2:0.8,2:0.9,3:0.8,3:0.9")
    args = ap.parse_args()
    configs = [(int(a), float(b)) for a, b in (c.split(":") for c in args.configs.split(","))]
    base = get_settings()
    held_out = held_out_pipeline(base, args.limit, args.seed, reader_precision=args.precision)
    with held_out as (pipe, probes):
        reader = pipe.reader
        backend = reader.engine.backend
        counted = {"tokens": 0, "windows": 0, "padded": 0}
        forward = backend.forward

        def counting(batch):
            mask = batch["attention_mask"]
            counted["tokens"] += int(mask.sum())
            counted["windows"] += int(mask.shape[0])
            counted["padded"] += int(mask.size)
            return forward(batch)

        backend.forward = counting
        print(f"{len(probes)} questions, {len(pipe.store.chunks)} chunks", flush=True)
        for first, accept in configs:
            reader.first_passages, reader.first_accept = first, accept
            counted.update(tokens=0, windows=0, padded=0)
            began = time.perf_counter()
            outcomes = []
            for p in probes:
                outcomes.append(score(p, pipe.ask(p.question)))
            figures = summarise(outcomes)
            figures["tokens_per_question"] = round(counted["tokens"] / len(probes), 1)
            figures["padded_per_question"] = round(counted["padded"] / len(probes), 1)
            figures["windows_per_question"] = round(counted["windows"] / len(probes), 2)
            figures["wall_s"] = round(time.perf_counter() - began, 1)
            print(f"first_passages={first} accept={accept}: {json.dumps(figures)}", flush=True)


if __name__ == "__main__":
    main()
