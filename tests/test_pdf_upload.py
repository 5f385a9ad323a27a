"""A seed article uploaded as a PDF to a live service: a question whose answer is on its second
page is answered from the PDF, the citation names page 2, and its offsets round-trip into the
stored text."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest
from api_fixtures import running_server

from rag.config import SEED_CORPUS

reportlab = pytest.importorskip("reportlab", reason="the test extra builds PDFs with reportlab")
from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.lib.styles import getSampleStyleSheet  # noqa: E402
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate  # noqa: E402

TOKEN = "pdf-upload-token-0123456789abcdef"
ARTICLE = "004_600d39537292fdeb.txt"


def article_pdf(text: str, evidence: str, path: Path) -> Path:
    """The article as a PDF: its title and first paragraph on page 1, the paragraph holding
    ``evidence`` on page 2, the rest after."""
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    at = next(i for i, p in enumerate(paragraphs) if evidence[:60] in " ".join(p.split()))
    assert at > 1, "the evidence must not be in the title or the first paragraph"
    style = getSampleStyleSheet()["BodyText"]
    rest = paragraphs[2:at] + paragraphs[at + 1 :]
    story = [Paragraph(escape(p), style) for p in paragraphs[:2]]
    story += [PageBreak(), Paragraph(escape(paragraphs[at]), style), PageBreak()]
    story += [Paragraph(escape(p), style) for p in rest]
    SimpleDocTemplate(str(path), pagesize=A4, title="Wang Yi on Ukraine").build(story)
    return path


@pytest.fixture(scope="module")
def pdf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service over the seeds without the article that the test uploads as a PDF."""
    tmp = tmp_path_factory.mktemp("pdf-upload")
    shutil.copytree(SEED_CORPUS, tmp / "corpus")
    (tmp / "corpus" / ARTICLE).unlink()
    env = {
        "VERBATIM_CORPUS_DIR": str(tmp / "corpus"),
        "VERBATIM_INDEX_DIR": str(tmp / "index"),
        "VERBATIM_ADMIN_TOKEN": TOKEN,
        "VERBATIM_RATE_LIMIT_PER_MINUTE": "0",
    }
    with running_server(tmp, env) as url:
        yield url


def test_an_answer_on_the_second_page_cites_page_two(pdf_server, dev_questions, tmp_path):
    question = next(q for q in dev_questions if q["id"] == "dev-001")
    pdf = article_pdf((SEED_CORPUS / ARTICLE).read_text(), question["evidence"], tmp_path / "a.pdf")
    with httpx.Client(base_url=pdf_server, timeout=120) as http:
        before = http.post("/ask", json={"question": question["question"]}).json()
        assert before["abstained"] or before["citations"][0]["doc_id"] != "wang-yi.pdf"
        files = {"files": ("wang-yi.pdf", pdf.read_bytes(), "application/pdf")}
        up = http.post("/documents", files=files, headers={"Authorization": f"Bearer {TOKEN}"})
        assert up.status_code == 201, up.text
        answer = http.post("/ask", json={"question": question["question"]}).json()
        assert answer["answer"] in question["answers"], answer
        cited = answer["citations"][0]
        assert (cited["doc_id"], cited["page"]) == ("wang-yi.pdf", 2)
        doc = http.get("/documents/wang-yi.pdf").json()
        assert doc["text"][cited["start"] : cited["end"]] == answer["answer"]
        assert doc["format"] == "pdf" and doc["pages"] > 2
        view = http.get(f"/documents/wang-yi.pdf/view?start={cited['start']}&end={cited['end']}")
        assert 'id="page-2"' in view.text and 'id="cited"' in view.text
