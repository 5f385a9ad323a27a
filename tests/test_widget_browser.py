"""End to end: the chat widget in Debian's Chromium, against a live ``verbatim serve``.

Needs ``apt-get install -y chromium`` (Playwright's own browser download is not used).
Screenshots land in artifacts/ (gitignored).
"""

from __future__ import annotations

import re

import httpx
import pytest
from api_fixtures import ANNIVERSARY_ID, free_port
from browser_support import ARTIFACTS, csp_violations, new_page
from playwright.sync_api import Browser, Locator, Page, Route, expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_javascript_errors")]

ANSWER_TIMEOUT_MS = 60_000
WIDGET = "#verbatim-widget"  # Playwright's CSS locators pierce its open shadow root


@pytest.fixture(scope="module")
def anniversary(dev_questions: list[dict]) -> dict:
    return next(q for q in dev_questions if q["id"] == ANNIVERSARY_ID)


def active_in_widget(page: Page) -> str:
    """The class or id of the focused element inside the widget's shadow root."""
    return page.evaluate(
        "(() => { const a = document.querySelector('#verbatim-widget').shadowRoot.activeElement;"
        " return a ? (a.id || a.className) : ''; })()"
    )


def ask(page: Page, question: str) -> Locator:
    """Type the question into the widget (opening it if closed), send with Enter; the reply."""
    if page.locator(f"{WIDGET} .panel").is_hidden():
        page.locator(f"{WIDGET} .launcher").click()
    replies = page.locator(f"{WIDGET} li.msg.bot:not(.loading)")
    before = replies.count()
    box = page.get_by_label("Your question")
    box.fill(question)
    box.press("Enter")
    expect(replies).to_have_count(before + 1, timeout=ANSWER_TIMEOUT_MS)
    return replies.last


def test_answer_citation_and_document_view(
    browser: Browser,
    live_server: str,
    anniversary: dict,
) -> None:
    api = httpx.post(
        f"{live_server}/ask", json={"question": anniversary["question"]}, timeout=60
    ).json()
    page = new_page(browser)
    page.goto(live_server + "/")
    launcher = page.get_by_role("button", name="Ask the documents")
    launcher.click()
    expect(page.locator(f"{WIDGET} .panel")).to_be_visible()
    assert active_in_widget(page) == "vb-input"

    reply = ask(page, anniversary["question"])
    answer = reply.locator(".answer")
    expect(answer).to_have_text(api["answer"])
    assert any(a in answer.text_content() for a in anniversary["answers"])
    expect(reply.locator(".confidence")).to_have_text(
        re.compile(r"(High|Medium|Low) confidence · \d+%")
    )
    cite = api["citations"][0]
    if cite["sentence"].strip() != api["answer"].strip():  # else the answer is the sentence
        expect(reply.locator("blockquote")).to_have_text(cite["sentence"])
        expect(reply.locator("blockquote mark")).to_have_text(api["answer"])
    link = reply.locator(".source a")
    expect(link).to_have_text(cite["title"])
    doc_ids = "|".join(re.escape(d) for d in [anniversary["doc"], *anniversary["also_in"]])
    expect(link).to_have_attribute(
        "href",
        re.compile(rf"^{re.escape(live_server)}/documents/({doc_ids})/view\?start=\d+&end=\d+$"),
    )
    expect(link).to_have_attribute("target", "_blank")
    send = page.locator(f"{WIDGET} .send")
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 105, 180)"
    page.screenshot(path=ARTIFACTS / "widget.png")

    with page.context.expect_page() as opened:
        link.click()
    view = opened.value
    view.wait_for_load_state()
    mark = view.locator("mark#cited")
    expect(mark).to_have_text(api["answer"])
    expect(mark).to_be_in_viewport()
    view.screenshot(path=ARTIFACTS / "widget-view.png")
    view.close()

    page.get_by_label("Your question").focus()
    page.keyboard.press("Escape")
    expect(page.locator(f"{WIDGET} .panel")).to_be_hidden()
    assert active_in_widget(page) == "launcher"
    page.reload()  # the conversation survives a reload (sessionStorage)
    launcher.click()
    expect(page.locator(f"{WIDGET} .msg.user")).to_have_text([anniversary["question"]])
    page.context.close()


def test_mobile_width_dark_theme(
    browser: Browser,
    live_server: str,
    anniversary: dict,
) -> None:
    page = new_page(browser, width=375, height=740, scheme="dark")
    page.goto(live_server + "/")
    reply = ask(page, anniversary["question"])
    expect(reply.locator(".source a")).to_be_visible()
    box = page.locator(f"{WIDGET} .panel").bounding_box()
    assert box is not None and box["width"] == 375 and box["x"] == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=ARTIFACTS / "widget-mobile.png")
    page.context.close()


def test_text_is_never_html(browser: Browser, live_server: str) -> None:
    page = new_page(browser)
    page.goto(live_server + "/")
    question = '<img src=x onerror="window.pwned=1"> <b>bold</b>?'
    ask(page, question)
    expect(page.locator(f"{WIDGET} .msg.user").last).to_have_text(question)
    assert page.locator(f"{WIDGET} img, {WIDGET} b").count() == 0
    assert page.evaluate("window.pwned") is None
    page.context.close()


def test_server_error_is_readable(browser: Browser, live_server: str) -> None:
    page = new_page(browser)
    page.goto(live_server + "/")
    page.evaluate("window.VerbatimWidget.ask('why '.repeat(200))")  # over the 500-character limit
    error = page.locator(f"{WIDGET} li.error")
    expect(error).to_contain_text("the limit is 500", timeout=ANSWER_TIMEOUT_MS)
    page.context.close()


def test_unreachable_server(browser: Browser, live_server: str) -> None:
    page = new_page(browser)
    dead = f"http://127.0.0.1:{free_port()}"
    page.set_content(
        f'<p>host page</p><script src="{live_server}/widget.js" data-endpoint="{dead}"></script>'
    )
    reply = ask(page, "Is anybody there?")
    expect(reply).to_contain_text("Can't reach the server")
    expect(reply.get_by_role("button", name="Try again")).to_be_visible()
    page.context.close()


def test_loading_then_abstention(browser: Browser, live_server: str) -> None:
    """The UI's handling of an abstention, with the reply held back to see the loading state."""
    page = new_page(browser)
    held: list[Route] = []
    page.route("**/ask", lambda route: held.append(route))
    page.goto(live_server + "/")
    page.locator(f"{WIDGET} .launcher").click()
    page.get_by_label("Your question").fill("Who won the 1998 football world cup?")
    page.get_by_label("Your question").press("Enter")
    expect(page.locator(f"{WIDGET} li.loading")).to_contain_text("Searching the documents")
    held[0].fulfill(
        json={
            "question": "Who won the 1998 football world cup?",
            "answer": None,
            "abstained": True,
            "score": 0.12,
            "citations": [],
            "passages": [],
            "alternatives": [],
            "request_id": "x",
            "timings_ms": {"retrieve": 1.0, "read": 1.0, "total": 2.0},
        }
    )
    reply = page.locator(f"{WIDGET} li.msg.bot").last
    expect(reply).to_contain_text("Not found in the documents.")
    expect(page.locator(f"{WIDGET} li.loading")).to_have_count(0)
    page.context.close()


def test_supporting_sentence_marks_the_answer(
    browser: Browser,
    live_server: str,
    anniversary: dict,
) -> None:
    """A span answer inside a longer sentence: the sentence is quoted, the span marked.

    The server's real reply is narrowed to "75th" inside its sentence, so this holds whichever
    reader the server runs.
    """

    def narrow(route: Route) -> None:
        body = route.fetch().json()
        cite = body["citations"][0]
        offset = cite["sentence"].index("75th")
        cite["start"] = cite["sentence_start"] + offset
        cite["end"] = cite["start"] + 4
        cite["text"] = body["answer"] = "75th"
        route.fulfill(json=body)

    page = new_page(browser)
    page.route("**/ask", narrow)
    page.goto(live_server + "/")
    reply = ask(page, anniversary["question"])
    expect(reply.locator(".answer")).to_have_text("75th")
    expect(reply.locator("blockquote")).to_contain_text("75th anniversary")
    expect(reply.locator("blockquote mark")).to_have_text("75th")
    expect(reply.locator(".source a")).to_have_attribute("href", re.compile(r"start=\d+&end=\d+$"))
    page.screenshot(path=ARTIFACTS / "widget-span.png")
    page.context.close()


# -- issue 16: XSS payloads stay text, every page's CSP holds -----------------------------------
XSS = [
    '<img src=x onerror="window.pwned=1">',
    "<svg onload=window.pwned=1>",
    '"><script>window.pwned=1</script>',
    '</textarea><iframe srcdoc="<script>parent.pwned=1</script>">',
    "javascript:window.pwned=1",
    "'-window.pwned=1-'",
    "{{constructor.constructor('window.pwned=1')()}}",
    "<a href=javascript:window.pwned=1>click</a>",
]
INJECTED = "img, svg, script, iframe, a[href^='javascript'], b"


@pytest.mark.reliability
def test_xss_payloads_in_answers_stay_text(browser: Browser, live_server: str) -> None:
    """A server reply whose every field is an XSS payload is shown as text, links stay http(s)."""
    page = new_page(browser)
    violations = csp_violations(page)
    payload = iter(XSS * 3)

    def hostile(route: Route) -> None:
        answer, title = next(payload), next(payload)
        sentence = f"{next(payload)} {answer} {next(payload)}"
        cite = {
            "doc_id": next(payload),
            "title": title,
            "text": answer,
            "start": 0,
            "end": len(answer),
            "passage": sentence,
            "passage_start": 0,
            "passage_end": len(sentence),
            "score": 0.9,
            "sentence": sentence,
            "sentence_start": 0,
            "sentence_end": len(sentence),
            "url": next(payload),
        }
        route.fulfill(
            json={
                "question": "q",
                "answer": answer,
                "abstained": False,
                "score": 0.9,
                "citations": [cite],
                "alternatives": [],
                "passages": [],
                "request_id": "x",
                "timings_ms": {"retrieve": 1.0, "read": 1.0, "total": 2.0},
            }
        )

    page.route("**/ask", hostile)
    page.goto(live_server + "/")
    for question in XSS[:4]:
        reply = ask(page, question)
        href = reply.locator(".source a").get_attribute("href") or ""
        assert href == "about:blank" or href.startswith(live_server), href
    for question in XSS[:4]:
        expect(page.locator(f"{WIDGET} .msg.user").filter(has_text=question)).to_have_count(1)
    assert page.locator(f"{WIDGET} .log :is({INJECTED})").count() == 0
    assert page.evaluate("window.pwned") is None
    assert violations == []
    page.context.close()


@pytest.mark.reliability
def test_document_view_keeps_payloads_inert(browser: Browser) -> None:
    """The real document view, payloads in its id, title and text, under its own CSP."""
    from api.views import render_view
    from rag.documents import Document

    text = "\n".join(XSS) + "\nThe cited span.\n"
    start = text.index("cited")
    doc = Document(doc_id=XSS[2], title=XSS[0], text=text, content_hash="x")
    view = render_view(doc, start, start + 5)
    page = new_page(browser)
    violations = csp_violations(page)
    page.route(
        "http://view.test/**",
        lambda route: route.fulfill(
            body=bytes(view.body), headers=dict(view.headers), content_type="text/html"
        ),
    )
    page.goto("http://view.test/documents/x/view")
    expect(page.locator("mark#cited")).to_have_text("cited")
    expect(page.locator("main")).to_contain_text(XSS[1])
    expect(page.locator("header h1")).to_have_text(XSS[0])
    assert page.locator("header *, main *").count() == 3  # h1, div, mark: nothing injected
    assert page.evaluate("window.pwned") is None
    assert violations == []
    page.context.close()


@pytest.mark.reliability
@pytest.mark.parametrize("path", ["/", "/docs"])
def test_pages_work_under_their_csp(browser: Browser, live_server: str, path: str) -> None:
    page = new_page(browser)
    violations = csp_violations(page)
    response = page.goto(live_server + path)
    assert response is not None
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    if path == "/":
        expect(page.locator("#documents a")).to_have_count(5)
        expect(page.locator("#snippet")).to_contain_text("widget.js")
    else:  # Swagger UI's script ran (it renders into #swagger-ui) and its styles applied
        expect(page.locator("#swagger-ui .swagger-ui")).to_be_attached(timeout=30_000)
        assert page.evaluate("typeof window.SwaggerUIBundle") == "function"
        # and it rendered the OpenAPI 3.1 schema: every operation, no "Unable to render"
        expect(page.locator(".opblock-summary-path", has_text="/ask")).to_be_visible()
        expect(page.locator(".opblock-summary-path", has_text="/jobs/{job_id}")).to_be_visible()
        expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
    assert violations == []
    page.context.close()
