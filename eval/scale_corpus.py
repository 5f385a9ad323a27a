"""The corpus of ``verbatim bench-scale``: one deterministic sequence of documents cut at about
N chunks.

First the held-out half of SQuAD v2.0 dev (the articles :mod:`eval.squad_retrieval` and
:mod:`eval.squad_ask` ask about), "planted in": whole articles, taking at most a quarter of N
(at least one article), so their answerable questions can be asked of the big corpus. Then real
text: SQuAD v1.1 train and SQuADShifts, one document per article (paragraphs joined by blank
lines, the title as first line; an article of more than 50 paragraphs is cut into parts), in a
seeded shuffle. Beyond the real text (about 55k chunks), new documents of sentences recombined
from its paragraphs. The last document is shortened (whole paragraphs) so the total lands on N.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from eval.squad_retrieval import Probe
from rag.chunking import Chunker
from rag.documents import Document, content_hash, document_from_bytes
from rag.training.squad import (
    SHIFTS,
    SQUAD_TRAIN,
    SQUAD_V2_DEV,
    examples_from_articles,
    heldout_articles,
    load_articles,
)

SEED = 13
PART_PARAGRAPHS = 50  # longer articles (the one Reddit "article" has 2,035) become parts
PLANTED_SHARE = 4  # the planted articles take at most N / 4 chunks
PAGE_CHARS = 3000  # one page of the document added with --add-pages
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


class QADataMissing(FileNotFoundError):
    """The SQuAD files the corpus is made of are not where the settings say."""


def require_data(data_dir: Path) -> None:
    """:class:`QADataMissing` naming the folder looked in, when a needed file is absent."""
    missing = [name for name in (SQUAD_TRAIN, SQUAD_V2_DEV) if not (data_dir / name).is_file()]
    if missing:
        raise QADataMissing(
            f"no {' or '.join(missing)} in {data_dir}: the QA data folder ../shared/qa-data must "
            "sit beside the project (or set VERBATIM_QA_DATA_DIR to the folder that holds it)"
        )


@dataclass(frozen=True)
class Source:
    """A document before it is written: its id (the file's path in the corpus folder)."""

    doc_id: str
    title: str
    paragraphs: tuple[str, ...]

    def text(self, paragraphs: int | None = None) -> str:
        return "\n\n".join([self.title, *self.paragraphs[:paragraphs]]) + "\n"


@dataclass(frozen=True)
class Planned:
    """A document of the corpus: what its file holds and how many chunks it makes."""

    doc_id: str
    text: str
    chunks: int
    planted: bool = False

    @property
    def sha256(self) -> str:
        return content_hash(self.text.encode("utf-8"))


@dataclass
class ScaleCorpus:
    docs: list[Planned]
    probes: list[Probe]  # the planted articles' answerable questions

    @property
    def chunks(self) -> int:
        return sum(d.chunks for d in self.docs)


def _slug(title: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", title).strip("_")[:40] or "untitled"


def _parts(prefix: str, i: int, article: dict) -> Iterator[Source]:
    title = article["title"].replace("_", " ")
    paragraphs = [p["context"].strip() for p in article["paragraphs"] if p["context"].strip()]
    n_parts = max(1, -(-len(paragraphs) // PART_PARAGRAPHS))
    size = -(-len(paragraphs) // n_parts)
    for part in range(n_parts):
        chunk = tuple(paragraphs[part * size : (part + 1) * size])
        suffix = f"_p{part + 1}" if n_parts > 1 else ""
        name = f"{prefix}/{i:04d}_{_slug(title)}{suffix}.txt"
        yield Source(name, f"{title} (part {part + 1})" if n_parts > 1 else title, chunk)


class CorpusSource:
    """The SQuAD files of one folder, read once."""

    def __init__(self, data_dir: Path, seed: int = SEED):
        require_data(data_dir)
        self.data_dir = Path(data_dir)
        self.seed = seed

    @cached_property
    def planted(self) -> list[tuple[Source, dict]]:
        """Each held-out article as a document, with the article."""
        out = []
        for i, a in enumerate(heldout_articles(self.data_dir)):
            title = a["title"].replace("_", " ")
            paragraphs = tuple(p["context"] for p in a["paragraphs"])
            out.append((Source(f"planted/{i:03d}_{_slug(title)}.txt", title, paragraphs), a))
        return out

    @cached_property
    def real(self) -> list[Source]:
        """SQuAD v1.1 train and the SQuADShifts files present, in a seeded shuffle."""
        docs: list[Source] = []
        for name in (SQUAD_TRAIN, *SHIFTS):
            if (self.data_dir / name).is_file():
                prefix = name.split(".json")[0].replace("-from-explorer", "")
                for i, article in enumerate(load_articles(self.data_dir / name)):
                    docs.extend(_parts(prefix, i, article))
        random.Random(self.seed).shuffle(docs)
        return docs

    @cached_property
    def sentences(self) -> list[str]:
        """Every sentence of the real text (split simply: recombination needs no precision)."""
        return [
            s.strip()
            for doc in self.real
            for p in doc.paragraphs
            for s in _SENTENCE_END.split(p)
            if len(s.strip()) > 20
        ]

    def recombined(self, j: int) -> Source:
        """New document ``j``: 8 to 30 paragraphs of 3 to 7 sentences drawn from the real text."""
        rng = random.Random(f"{self.seed}:mixed:{j}")
        pool = self.sentences
        paragraphs = tuple(
            " ".join(rng.choice(pool) for _ in range(rng.randint(3, 7)))
            for _ in range(rng.randint(8, 30))
        )
        return Source(f"mixed/{j:06d}.txt", f"Recombined text {j}", paragraphs)

    def filler(self) -> Iterator[Source]:
        yield from self.real
        j = 0
        while True:
            yield self.recombined(j)
            j += 1

    def added_document(self, pages: int) -> Document:
        """A paged document of new text (recombined sentences), about ``PAGE_CHARS`` a page."""
        rng = random.Random(f"{self.seed}:added:{pages}")
        pool = self.sentences
        text, starts = f"Added {pages}-page document\n\n", []
        for _ in range(pages):
            starts.append(len(text))
            page_start = len(text)
            while len(text) - page_start < PAGE_CHARS:
                text += " ".join(rng.choice(pool) for _ in range(rng.randint(3, 7))) + "\n\n"
        return Document(
            doc_id=f"bench-scale-added/{pages}-pages.txt",
            title=f"Added {pages}-page document",
            text=text,
            content_hash=content_hash(text.encode("utf-8")),
            pages=tuple(starts),
        )


class ChunkCounter:
    """Chunks a text makes as a corpus file, read and cut exactly as :class:`Library` does."""

    def __init__(self, count_tokens, chunk_tokens: int, overlap_tokens: int):
        self.chunker = Chunker(count_tokens, chunk_tokens, overlap_tokens)

    def __call__(self, doc_id: str, text: str) -> int:
        doc = document_from_bytes(doc_id, doc_id.rsplit("/", 1)[-1], text.encode("utf-8"))
        return len(self.chunker.chunk(doc))


def _shortened(source: Source, room: int, count: ChunkCounter) -> Planned | None:
    """The longest paragraph prefix of ``source`` that makes at most ``room`` chunks."""
    lo, hi, best = 1, len(source.paragraphs) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        text = source.text(mid)
        n = count(source.doc_id, text)
        if n <= room:
            best, lo = Planned(source.doc_id, text, n), mid + 1
        else:
            hi = mid - 1
    return best


def planted_probes(doc: Source, article: dict) -> list[Probe]:
    """The answerable questions of a planted article, each to be found in ``doc``."""
    return [
        Probe(ex.question, doc.doc_id, ex.context, ex.answers, ex.title)
        for ex in examples_from_articles([article])
        if ex.answers
    ]


def plan_corpus(source: CorpusSource, n: int, count: ChunkCounter) -> ScaleCorpus:
    """The documents of the corpus of about ``n`` chunks, and the planted questions."""
    docs: list[Planned] = []
    probes: list[Probe] = []
    budget = n // PLANTED_SHARE
    for doc, article in source.planted:
        text = doc.text()
        chunks = count(doc.doc_id, text)
        if docs and sum(d.chunks for d in docs) + chunks > budget:
            break
        docs.append(Planned(doc.doc_id, text, chunks, planted=True))
        probes.extend(planted_probes(doc, article))
    total = sum(d.chunks for d in docs)
    for doc in source.filler():
        if total >= n:
            break
        text = doc.text()
        chunks = count(doc.doc_id, text)
        if total + chunks <= n:
            docs.append(Planned(doc.doc_id, text, chunks))
            total += chunks
            continue
        last = _shortened(doc, n - total, count)
        if last is not None:
            docs.append(last)
        break
    return ScaleCorpus(docs, probes)


def write_folder(folder: Path, docs: list[Planned]) -> None:
    """The corpus files in ``folder``, rewritten only where they differ; others removed."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {d.doc_id for d in docs}
    for path in folder.rglob("*.txt"):
        if path.relative_to(folder).as_posix() not in wanted:
            path.unlink()
    for d in docs:
        path = folder / d.doc_id
        data = d.text.encode("utf-8")
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
