"""Whole asks over a bench-scale store: do answers and refusals hold as distractors grow, and
what does lexical evidence do there (issues 18 and 14)?

    VERBATIM_EMBEDDING_PRECISION=int8 VERBATIM_CHUNK_CONTEXT=title \\
        python docs/studies/scale_ask.py /work/scale_norms 1000000 [--limit N]

The folder is a ``verbatim bench-scale --work-dir`` holding ``corpus-N`` and ``store-N`` per size;
every held-out SQuAD v2.0 dev article is planted in each store. The questions are squad-ask's
(its ``sample``: the articles the calibration was not fitted on, answerable and unanswerable,
seed 7), asked with second pass 7 under each of ``VARIANTS``: fusion alone, lexical evidence
(weight .5 over pools of 50) and scaled fusion (``fusion`` scaled, 50). The figures are
squad-ask's ``summarise``; ``right_document`` is left out (the planted articles' doc ids are not
squad-ask's)."""

import argparse
import json
import tempfile
from pathlib import Path

from embeddings.encoder import Encoder
from eval.squad_ask import sample, score, summarise
from eval.squad_retrieval import write_corpus
from rag.config import get_settings
from rag.pipeline import AskPipeline

VARIANTS = {
    "fusion alone": {"candidates": 20, "lexical_evidence": "off"},
    "lexical evidence": {"lexical_evidence": "on"},  # weight .5, pools of 50
    "scaled fusion": {"candidates": 50, "fusion": "scaled", "lexical_evidence": "off"},
}

parser = argparse.ArgumentParser()
parser.add_argument("work", type=Path)
parser.add_argument("sizes", type=int, nargs="+")
parser.add_argument("--limit", type=int, default=0, help="questions (0: all)")
parser.add_argument("--only", nargs="*", choices=list(VARIANTS), help="these variants alone")
args = parser.parse_args()
base = get_settings()
with tempfile.TemporaryDirectory() as tmp:
    probes = sample(write_corpus(Path(tmp), base.qa_data_dir, unanswerable=True), args.limit, 7)
print(f"{len(probes)} questions, {sum(not p.answers for p in probes)} unanswerable", flush=True)
for n in args.sizes:
    s = base.model_copy(
        update={"corpus_dir": args.work / f"corpus-{n}", "index_dir": args.work / f"store-{n}"}
    )
    pipe = AskPipeline(s, encoder=Encoder.from_settings(s))
    pipe.warm_up()
    for name, updates in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        asking = pipe.with_settings(second_pass_top_k=7, **updates)
        figures = summarise([score(p, asking.ask(p.question)) for p in probes])
        figures.pop("right_document")
        print(f"{n} chunks, {name}: {json.dumps(figures)}", flush=True)
