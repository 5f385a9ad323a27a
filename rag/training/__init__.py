"""The reader lab: training, evaluating and calibrating Verbatim's span reader (never imported
by the serving path).

- ``squad``: SQuAD files, the fixed article splits, the official metrics.
- ``negatives`` and ``mix``: synthetic unanswerables and the training mix.
- ``windows``: labelled training windows and their batches.
- ``train``: the seeded, resumable training loop (CPU or CUDA, same code).
- ``evaluate``: ``eval-reader``, SQuAD 2.0 metrics on the held-out half of SQuAD v2.0 dev.
- ``calibrate``: fitting ``calibration.json`` on held-out articles.
- ``cli``: the ``train-reader``, ``eval-reader`` and ``calibrate-reader`` subcommands.
"""
