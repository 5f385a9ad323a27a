"""The document view: a document's text as HTML, a cited span highlighted and scrolled to."""

from __future__ import annotations

import secrets
from html import escape

from fastapi.responses import HTMLResponse

from rag.documents import Document

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Verbatim</title>
<link rel="icon" href="data:,">
<style nonce="{nonce}">
  :root {{ color-scheme: light dark; --fg: #1d1f23; --bg: #fdfdfc; --muted: #5d6470;
          --mark: #ffe27a; --mark-fg: #1d1f23; --rule: #d9dce1; }}
  @media (prefers-color-scheme: dark) {{
    :root {{ --fg: #e6e8eb; --bg: #16181c; --muted: #a0a7b3; --mark: #8a6d00;
            --mark-fg: #fff; --rule: #30343b; }}
  }}
  body {{ margin: 0; background: var(--bg); color: var(--fg);
          font: 17px/1.6 Georgia, "DejaVu Serif", serif; }}
  header {{ position: sticky; top: 0; background: var(--bg); border-bottom: 1px solid var(--rule);
            padding: .75rem 1.25rem; font: 14px/1.4 system-ui, sans-serif; color: var(--muted); }}
  header h1 {{ margin: 0 0 .2rem; font-size: 1.1rem; color: var(--fg); }}
  main {{ max-width: 46rem; margin: 0 auto; padding: 1.25rem; white-space: pre-wrap;
          overflow-wrap: anywhere; }}
  mark {{ background: var(--mark); color: var(--mark-fg); padding: .05em .1em;
          border-radius: 3px; outline: 2px solid var(--mark); scroll-margin: 6rem; }}
  .page {{ display: block; margin: .5rem 0; color: var(--muted); text-align: center;
           font: 13px/1.4 system-ui, sans-serif; user-select: none; -webkit-user-select: none;
           scroll-margin: 6rem; }}
</style>
</head>
<body>
<header><h1>{title}</h1><div>{doc_id} · {where}</div></header>
<main id="text">{body}</main>
<script nonce="{nonce}">
  const m = document.getElementById("cited");
  if (m) m.scrollIntoView({{block: "center"}});
</script>
</body>
</html>
"""


def _page_marker(number: int) -> str:
    return (
        f'<span class="page" id="page-{number}" aria-label="Page {number}">— page {number} —</span>'
    )


def _body(text: str, pages: tuple[int, ...], span: tuple[int, int] | None) -> str:
    """``text`` escaped, a marker before each page, ``text[start:end]`` in ``<mark id="cited">``.

    The text is cut at every page start and at the span's ends, so a span crossing pages keeps
    its exact characters: the markers inside the ``<mark>`` are skipped by ``user-select``.
    """
    n = len(text)
    markers: dict[int, list[int]] = {}
    for number, offset in enumerate(pages, start=1):
        markers.setdefault(min(max(offset, 0), n), []).append(number)
    start, end = span if span else (-1, -1)
    bounds = sorted({0, n, *markers, *((start, end) if span else ())})
    out = []
    for a, b in zip(bounds, [*bounds[1:], n], strict=True):
        if a == end and start != end:
            out.append("</mark>")
        out.extend(_page_marker(number) for number in markers.get(a, ()))
        if a == start:
            out.append('<mark id="cited"></mark>' if start == end else '<mark id="cited">')
        out.append(escape(text[a:b]))
    return "".join(out)


def render_view(doc: Document, start: int | None, end: int | None) -> HTMLResponse:
    """The document's text, escaped, with ``text[start:end]`` in ``<mark id="cited">``."""
    text, pages = doc.text, doc.pages
    count = f"{len(pages)} pages · " if len(pages) > 1 else "1 page · " if pages else ""
    if start is None or end is None:
        body, where = _body(text, pages, None), f"{count}{len(text)} characters"
    else:
        # The route checks 0 <= start < end <= len(text); clamping keeps the HTML well formed.
        start = min(max(start, 0), len(text))
        end = min(max(end, start), len(text))
        body = _body(text, pages, (start, end))
        page = doc.page_of(start)
        at = f"page {page}, " if page is not None else ""
        where = f"{count}{at}characters {start}–{end} highlighted"
    nonce = secrets.token_urlsafe(16)
    html = _PAGE.format(
        title=escape(doc.title), doc_id=escape(doc.doc_id), where=where, body=body, nonce=nonce
    )
    csp = (
        f"default-src 'none'; img-src data:; style-src 'nonce-{nonce}'; "
        f"script-src 'nonce-{nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": csp})
