"""Span decoding shared by the span reader and the held-out evaluation: the best answer spans of
each window by raw ``start + end`` logit, both ends in the context, within a maximum length."""

from __future__ import annotations

from typing import Any

Offsets = list[tuple[int, int] | None]  # per token: (char start, char end) if context, else None


def context_mask(offsets: list[Offsets], n_tokens: int) -> Any:
    """Bool tensor [windows, n_tokens]: True where a token belongs to the context."""
    import torch

    mask = torch.zeros((len(offsets), n_tokens), dtype=torch.bool)
    for w, offs in enumerate(offsets):
        mask[w, : len(offs)] = torch.tensor([o is not None for o in offs], dtype=torch.bool)
    return mask


def top_spans(
    start: Any, end: Any, context: Any, max_answer_tokens: int, k: int
) -> list[list[tuple[float, int, int]]]:
    """Per window, up to ``k`` best ``(start + end logit, start token, end token)``, best first.

    ``start``/``end``: float tensors [windows, tokens]; ``context``: the :func:`context_mask`.
    A span needs ``start <= end < start + max_answer_tokens`` with both tokens in the context.
    """
    import torch

    n_win, n_tok = start.shape
    idx = torch.arange(n_tok)
    band = (idx[None, :] >= idx[:, None]) & (idx[None, :] < idx[:, None] + max_answer_tokens)
    valid = band[None] & context[:, :, None] & context[:, None, :]
    pair = (start.float()[:, :, None] + end.float()[:, None, :]).masked_fill(~valid, -torch.inf)
    top = torch.topk(pair.reshape(n_win, -1), min(k, n_tok * n_tok), dim=1)
    out: list[list[tuple[float, int, int]]] = []
    for values, flats in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        spans = []
        for value, flat in zip(values, flats, strict=True):
            if value == -float("inf"):
                break
            i, j = divmod(flat, n_tok)
            spans.append((value, i, j))
        out.append(spans)
    return out
