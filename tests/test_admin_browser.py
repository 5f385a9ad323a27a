"""End to end: the admin page at /admin in Debian's Chromium, against a live ``verbatim serve``.

The server has its own corpus (a copy of the seeds plus one document with a hostile title), its
own index folder and an admin token, so nothing here touches the shared index or the seeds.
Needs ``apt-get install -y chromium``; screenshots land in artifacts/ (gitignored).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from api_fixtures import running_server
from browser_support import ARTIFACTS, csp_violations, new_page
from playwright.sync_api import Browser, Dialog, Locator, Page, Route, expect

from rag.config import SEED_CORPUS

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_javascript_errors")]

TIMEOUT_MS = 60_000  # an upload indexes the file before it answers

TOKEN = "admin-token-0123456789abcdef0123"
TOKEN_KEY = "verbatim-admin-token"  # the sessionStorage key admin.js uses
HOSTILE_TITLE = "<img src=x onerror=alert(1)> Night shift notes"
HOSTILE_DOC = (
    f"{HOSTILE_TITLE}\n\nThe night ferry to Varrow Island leaves the harbour at a quarter "
    "past eleven and returns before dawn.\n"
)
FACT_TITLE = "Tidewater Almanac"
FACT_DOC = (
    f"# The {FACT_TITLE}\n\n"
    "The Quillon Reach lighthouse was kept for thirty-seven years by Oskar Brenneval, who "
    "logged every storm in a green ledger. The lamp burned colza oil until the station was "
    "electrified.\n"
)
FACT_QUESTION = "Who kept the Quillon Reach lighthouse?"
FACT_ANSWER = "Brenneval"
SYNC_BYTES = 4096


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``verbatim serve`` over a copy of the seeds plus a hostile title, with an admin token."""
    assert len(TOKEN) == 32
    tmp = tmp_path_factory.mktemp("admin-server")
    corpus = tmp / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    (corpus / "hostile.txt").write_text(HOSTILE_DOC, encoding="utf-8")
    env = {
        "VERBATIM_CORPUS_DIR": str(corpus),
        "VERBATIM_INDEX_DIR": str(tmp / "index"),
        "VERBATIM_ADMIN_TOKEN": TOKEN,
        "VERBATIM_RATE_LIMIT_PER_MINUTE": "0",
        # Uploads over 4 KB become background jobs (test_large_upload_runs_as_a_job).
        "VERBATIM_UPLOAD_SYNC_BYTES": str(SYNC_BYTES),
    }
    with running_server(tmp, env) as url:
        yield url


def listing(url: str) -> list[dict]:
    return httpx.get(f"{url}/documents", timeout=30).json()["documents"]


def ask(url: str, question: str) -> dict:
    res = httpx.post(f"{url}/ask", json={"question": question}, timeout=60)
    assert res.status_code == 200, res.text
    return res.json()


def status(page: Page) -> Locator:
    return page.get_by_role("status")


def rows(page: Page) -> Locator:
    return page.locator("#documents tbody tr")


def open_admin(page: Page, url: str) -> None:
    page.goto(url + "/admin")
    expect(page.locator("#caption")).to_have_text(re.compile(r"^\d+ documents?$"))


def md_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the page and its list ----------------------------------------------------------------------
def test_lists_the_documents(browser: Browser, admin_server: str) -> None:
    docs = listing(admin_server)
    assert len(docs) == 6  # the five seeds and the hostile title
    page = new_page(browser)
    violations = csp_violations(page)
    response = page.goto(admin_server + "/admin")
    assert response is not None and response.ok
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    script = httpx.get(f"{admin_server}/admin.js", timeout=10)
    assert script.headers["cache-control"] == "no-cache"
    assert script.headers["content-type"].startswith("text/javascript")

    table = page.get_by_role("table")
    expect(table.locator("caption")).to_have_text("6 documents")
    headers = table.locator("thead th[scope=col]")
    expect(headers).to_have_text(["Title", "ID", "Format", "Pages", "Chunks", "Updated", "Actions"])
    expect(rows(page)).to_have_count(len(docs))
    for doc in docs:
        row = rows(page).filter(
            has=page.locator("code", has_text=re.compile(f"^{re.escape(doc['doc_id'])}$"))
        )
        expect(row).to_have_count(1)
        cells = row.locator("td")
        link = cells.nth(0).get_by_role("link")
        expect(link).to_have_text(doc["title"])
        expect(link).to_have_attribute("href", admin_server + doc["url"])
        dash = "—"
        expect(cells.nth(2)).to_have_text(str(doc.get("format") or dash))
        pages = doc.get("pages")
        expect(cells.nth(3)).to_have_text(dash if pages is None else str(pages))
        expect(cells.nth(4)).to_have_text(str(doc["chunks"]))
        updated = doc.get("updated_at") or doc.get("added_at")
        if updated:
            expect(cells.nth(5).locator("time")).to_have_attribute("datetime", updated)
        else:
            expect(cells.nth(5)).to_have_text(dash)
        expect(row.get_by_role("button", name=f"Delete {doc['title']}")).to_be_visible()

    expect(page.get_by_label("Admin token")).to_have_attribute("type", "password")
    files = page.get_by_label("Choose files to upload")
    expect(files).to_have_attribute("accept", ".txt,.md,.html,.htm,.pdf,.docx")
    assert files.evaluate("el => el.multiple") is True
    expect(status(page)).to_have_attribute("aria-live", "polite")
    page.screenshot(path=ARTIFACTS / "admin.png", full_page=True)
    assert violations == []
    page.context.close()


def test_narrow_dark(browser: Browser, admin_server: str) -> None:
    page = new_page(browser, width=360, height=740, scheme="dark")
    open_admin(page, admin_server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 18, 18)"
    expect(page.get_by_label("Choose files to upload")).to_be_in_viewport()
    page.screenshot(path=ARTIFACTS / "admin-mobile.png")
    page.context.close()


def test_hostile_title_is_text(browser: Browser, admin_server: str) -> None:
    page = new_page(browser)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_admin(page, admin_server)
    link = page.get_by_role("link", name=HOSTILE_TITLE)
    expect(link).to_have_text(HOSTILE_TITLE)
    expect(page.get_by_role("button", name=f"Delete {HOSTILE_TITLE}")).to_have_count(1)
    assert page.locator("main img").count() == 0
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert dialogs == []
    page.context.close()


# -- writes -------------------------------------------------------------------------------------
def test_upload_without_token_shows_the_servers_message(
    browser: Browser, admin_server: str, tmp_path: Path
) -> None:
    before = listing(admin_server)
    refused = httpx.post(
        f"{admin_server}/documents",
        files={"files": ("probe.md", b"# Probe\n\nNothing.\n", "text/markdown")},
        timeout=30,
    )
    assert refused.status_code == 401
    message = refused.json()["error"]["message"]

    page = new_page(browser)
    open_admin(page, admin_server)
    expect(page.get_by_label("Admin token")).to_have_value("")
    page.get_by_label("Choose files to upload").set_input_files(
        md_file(tmp_path, "untokened.md", "# Untokened\n\nThis must not be indexed.\n")
    )
    expect(status(page)).to_contain_text(message, timeout=TIMEOUT_MS)
    expect(status(page)).to_have_class("error")
    assert listing(admin_server) == before
    expect(rows(page)).to_have_count(len(before))
    page.context.close()


def test_upload_ask_delete(browser: Browser, admin_server: str, tmp_path: Path) -> None:
    assert ask(admin_server, FACT_QUESTION)["abstained"] is True  # not in the seeds
    page = new_page(browser)
    sent: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: sent.append(r.headers) if r.method in ("POST", "DELETE") else None,
    )
    open_admin(page, admin_server)
    count = rows(page).count()
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_label("Choose files to upload").set_input_files(
        md_file(tmp_path, "tidewater.md", FACT_DOC)
    )
    expect(status(page)).to_contain_text("added", timeout=TIMEOUT_MS)
    expect(status(page)).to_have_class("ok")
    row = rows(page).filter(has_text=FACT_TITLE)
    expect(row).to_have_count(1)
    expect(rows(page)).to_have_count(count + 1)
    assert sent and all(h.get("authorization") == f"Bearer {TOKEN}" for h in sent)
    assert TOKEN not in page.url

    uploaded = next(d for d in listing(admin_server) if FACT_TITLE in d["title"])
    reply = ask(admin_server, FACT_QUESTION)
    assert reply["abstained"] is False, reply
    assert FACT_ANSWER in reply["answer"]
    assert reply["citations"][0]["doc_id"] == uploaded["doc_id"]

    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name=f"Delete {uploaded['title']}").click()
    expect(rows(page).filter(has_text=FACT_TITLE)).to_have_count(0, timeout=TIMEOUT_MS)
    expect(rows(page)).to_have_count(count)
    expect(status(page)).to_contain_text("Deleted")
    assert len(dialogs) == 1 and uploaded["doc_id"] in dialogs[0]
    assert all(d["doc_id"] != uploaded["doc_id"] for d in listing(admin_server))
    assert ask(admin_server, FACT_QUESTION)["abstained"] is True
    page.context.close()


def test_delete_can_be_cancelled(browser: Browser, admin_server: str) -> None:
    page = new_page(browser)
    deletes: list[str] = []
    page.on("request", lambda r: deletes.append(r.url) if r.method == "DELETE" else None)
    page.on("dialog", lambda d: d.dismiss())
    open_admin(page, admin_server)
    count = rows(page).count()
    rows(page).first.get_by_role("button").click()
    page.wait_for_timeout(300)
    assert deletes == []
    expect(rows(page)).to_have_count(count)
    page.context.close()


def test_token_stays_in_this_tab(browser: Browser, admin_server: str) -> None:
    page = new_page(browser)
    open_admin(page, admin_server)
    page.get_by_label("Admin token").fill(TOKEN)
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == TOKEN
    assert page.evaluate("localStorage.length") == 0
    assert TOKEN not in page.evaluate("document.cookie")
    assert page.context.cookies() == []
    assert TOKEN not in page.url

    page.reload()  # remembered for this tab
    expect(page.get_by_label("Admin token")).to_have_value(TOKEN)
    other = page.context.new_page()  # another tab does not see it
    other.goto(admin_server + "/admin")
    expect(other.get_by_label("Admin token")).to_have_value("")
    other.close()

    page.get_by_role("button", name="Forget token").click()
    expect(page.get_by_label("Admin token")).to_have_value("")
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    page.reload()
    expect(page.get_by_label("Admin token")).to_have_value("")
    page.context.close()


def test_large_upload_runs_as_a_job(browser: Browser, admin_server: str, tmp_path: Path) -> None:
    page = new_page(browser)
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/jobs/" in r.url else None)
    open_admin(page, admin_server)
    count = rows(page).count()
    page.get_by_label("Admin token").fill(TOKEN)
    paragraph = "The harbour ledger records every vessel that moored at the north quay. "
    text = "# Harbour Ledger\n\n" + "\n\n".join([paragraph * 4] * 20) + "\n"
    assert len(text.encode()) > SYNC_BYTES
    page.get_by_label("Choose files to upload").set_input_files(
        md_file(tmp_path, "ledger.md", text)
    )
    expect(status(page)).to_contain_text("Uploaded 1 document:", timeout=TIMEOUT_MS)
    expect(status(page)).to_contain_text("added")
    expect(rows(page).filter(has_text="Harbour Ledger")).to_have_count(1)
    expect(rows(page)).to_have_count(count + 1)
    assert polls, "a 202 upload is followed through GET /jobs/{id}"
    doc = next(d for d in listing(admin_server) if "Harbour Ledger" in d["title"])
    path = "/".join(quote(part, safe="") for part in doc["doc_id"].split("/"))
    gone = httpx.delete(
        f"{admin_server}/documents/{path}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert gone.status_code == 200, gone.text
    page.context.close()


# -- the UI's handling of the API, the server's replies replaced ---------------------------------
def only_post(handler):  # type: ignore[no-untyped-def]
    def route(r: Route) -> None:
        if r.request.method == "POST":
            handler(r)
        else:
            r.fallback()

    return route


def test_large_upload_polls_the_job(browser: Browser, admin_server: str, tmp_path: Path) -> None:
    page = new_page(browser)
    job = {"id": "j-1", "state": "queued", "progress": 0.0, "error": None, "documents": []}
    states = iter(
        [
            {**job, "state": "running", "progress": 0.4},
            {**job, "state": "running", "progress": 0.8},
            {
                **job,
                "state": "done",
                "progress": 1.0,
                "documents": [
                    {"doc_id": "big.pdf", "title": "<b>Big</b>", "status": "added", "chunks": 42}
                ],
            },
        ]
    )
    polls: list[str] = []

    def poll(route: Route) -> None:
        polls.append(route.request.url)
        route.fulfill(json=next(states))

    page.route(
        "**/documents",
        only_post(lambda r: r.fulfill(status=202, json={"documents": [], "job": job})),
    )
    page.route("**/jobs/**", poll)
    open_admin(page, admin_server)
    page.get_by_label("Choose files to upload").set_input_files(
        md_file(tmp_path, "big.md", "# Big\n\ntext\n")
    )
    expect(status(page)).to_contain_text("Indexing: running")
    expect(status(page)).to_contain_text("“<b>Big</b>” (big.pdf): added, 42 chunks")
    assert len(polls) == 3 and all(u.endswith("/jobs/j-1") for u in polls)
    assert page.locator("#status b").count() == 0
    expect(page.locator("#progress")).to_be_hidden()
    page.context.close()


def test_failed_job_shows_its_message(browser: Browser, admin_server: str, tmp_path: Path) -> None:
    page = new_page(browser)
    failed = {
        "id": "j-2",
        "state": "failed",
        "progress": 0.5,
        "error": {"code": "corrupt_document", "message": "scan.pdf: the PDF cannot be read"},
        "documents": [],
    }
    page.route(
        "**/documents",
        only_post(
            lambda r: r.fulfill(
                status=202, json={"documents": [], "job": {**failed, "state": "running"}}
            )
        ),
    )
    page.route("**/jobs/**", lambda r: r.fulfill(json=failed))
    open_admin(page, admin_server)
    page.get_by_label("Choose files to upload").set_input_files(md_file(tmp_path, "scan.md", "x\n"))
    expect(status(page)).to_have_text("Upload failed: scan.pdf: the PDF cannot be read")
    page.context.close()


def test_server_messages_are_text(browser: Browser, admin_server: str, tmp_path: Path) -> None:
    page = new_page(browser)
    message = (
        'writes are off; set <code>VERBATIM_ADMIN_TOKEN</code> <img src=x onerror="window.pwned=1">'
    )
    page.route(
        "**/documents",
        only_post(
            lambda r: r.fulfill(
                status=403, json={"error": {"code": "writes_disabled", "message": message}}
            )
        ),
    )
    open_admin(page, admin_server)
    page.get_by_label("Choose files to upload").set_input_files(
        md_file(tmp_path, "any.md", "# Any\n\ntext\n")
    )
    expect(status(page)).to_have_text(f"Upload failed: {message}")
    assert page.locator("#status *").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.pwned") is None
    page.context.close()


def test_dropped_files_go_as_multipart_files(browser: Browser, admin_server: str) -> None:
    page = new_page(browser)
    bodies: list[bytes] = []

    def created(route: Route) -> None:
        bodies.append(route.request.post_data_buffer or b"")
        route.fulfill(
            status=201,
            json={
                "documents": [
                    {"doc_id": "a.md", "title": "A", "status": "added", "chunks": 1},
                    {"doc_id": "b.txt", "title": "B", "status": "replaced", "chunks": 2},
                ],
                "job": None,
            },
        )

    page.route("**/documents", only_post(created))
    open_admin(page, admin_server)
    transfer = page.evaluate_handle(
        """() => {
            const dt = new DataTransfer();
            dt.items.add(new File(["# A\\n\\nalpha\\n"], "a.md", {type: "text/markdown"}));
            dt.items.add(new File(["B\\n\\nbeta\\n"], "b.txt", {type: "text/plain"}));
            return dt;
        }"""
    )
    drop = page.locator("#drop")
    drop.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(drop).to_have_class(re.compile(r"\bover\b"))
    drop.dispatch_event("drop", {"dataTransfer": transfer})
    expect(status(page)).to_contain_text("Uploaded 2 documents:")
    expect(status(page)).to_contain_text("“B” (b.txt): replaced, 2 chunks")
    expect(drop).not_to_have_class(re.compile(r"\bover\b"))
    body = bodies[0].decode()
    assert 'name="files"; filename="a.md"' in body and 'name="files"; filename="b.txt"' in body
    page.context.close()
