"""Training and evaluation of Verbatim's own extractive span reader (a small BERT with a span head).

- ``data``: loading SQuAD-format files, the fixed article split of SQuAD v2.0 dev, synthetic
  unanswerable questions, and batched window (feature) building with the fast tokenizer.
- ``train``: the seeded, reproducible training loop (CPU or CUDA, same code).
- ``squad_eval``: SQuAD 2.0-style metrics on the held-out half of SQuAD v2.0 dev.
- ``abstention``: a study of the reader's no-answer signal and verifiers built on it.
- ``cli``: the ``train-reader`` and ``eval-reader`` subcommands.
"""
