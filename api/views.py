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


def render_view(doc: Document, start: int | None, end: int | None) -> HTMLResponse:
    """The document's text, escaped, with ``text[start:end]`` in ``<mark id="cited">``."""
    text = doc.text
    if start is None or end is None:
        body, where = escape(text), f"{len(text)} characters"
    else:
        body = (
            f'{escape(text[:start])}<mark id="cited">{escape(text[start:end])}</mark>'
            f"{escape(text[end:])}"
        )
        where = f"characters {start}–{end} highlighted"
    nonce = secrets.token_urlsafe(16)
    html = _PAGE.format(
        title=escape(doc.title), doc_id=escape(doc.doc_id), where=where, body=body, nonce=nonce
    )
    csp = (
        f"default-src 'none'; img-src data:; style-src 'nonce-{nonce}'; "
        f"script-src 'nonce-{nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": csp})
