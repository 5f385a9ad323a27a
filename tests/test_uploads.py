"""Users' own documents through the real app: upload, ask, replace, delete, and every refusal,
over a real index in a temporary folder (the seed index is shared and stays untouched)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from api_fixtures import BASE_URL
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from embeddings.encoder import Encoder
from rag.config import Settings
from rag.pipeline import AskPipeline

TOKEN = "uploads-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FACT = (
    b"# Zephyrine Observatory\n\nThe Zephyrine Observatory was founded in 1931 by the astronomer "
    b"Ilse Varga. Its great telescope weighs forty tonnes.\n"
)
FOUNDER = "Who founded the Zephyrine Observatory?"
TELESCOPE = "How much does the great telescope of the Zephyrine Observatory weigh?"


def error_code(response, status: int) -> str:
    """The code of a response in the shared error shape with this status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]["code"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("uploads")
    (root / "corpus").mkdir()
    (root / "corpus" / "harbour.txt").write_text(
        "Harbour Notes\n\nThe lighthouse at Kestrel Point was built in 1874. "
        "It was designed by the engineer Mara Quill.\n",
        encoding="utf-8",
    )
    return Settings(
        corpus_dir=root / "corpus", index_dir=root / "index", admin_token=SecretStr(TOKEN)
    )


@pytest.fixture(scope="module")
def pipeline(settings: Settings, encoder: Encoder) -> AskPipeline:
    pipe = AskPipeline(settings, encoder=encoder)
    pipe.warm_up()
    return pipe


def client_of(settings: Settings, pipeline: AskPipeline, **updates: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=updates), pipeline), base_url=BASE_URL)


@pytest.fixture(scope="module")
def c(settings: Settings, pipeline: AskPipeline) -> Iterator[TestClient]:
    with client_of(settings, pipeline) as client:
        yield client


def generation(pipeline: AskPipeline) -> int:
    assert pipeline.store is not None
    return pipeline.store.docstore.generation()


def ask(c: TestClient, question: str) -> dict:
    response = c.post("/ask", json={"question": question})
    assert response.status_code == 200, response.text
    return response.json()


def md(name: str, data: bytes = FACT) -> list:
    return [("files", (name, data, "text/markdown"))]


# -- the life of a document --------------------------------------------------------------------
def test_upload_ask_replace_delete(c: TestClient, pipeline: AskPipeline) -> None:
    assert ask(c, FOUNDER)["abstained"]
    created = c.post("/documents", files=md("zephyrine.md"), headers=AUTH)
    assert created.status_code == 201, created.text
    assert created.json()["job"] is None
    [doc] = created.json()["documents"]
    assert doc["doc_id"] == "zephyrine.md" and doc["status"] == "added" and doc["chunks"] >= 1

    answer = ask(c, FOUNDER)  # searchable as soon as the upload answered
    assert not answer["abstained"] and "Ilse Varga" in answer["answer"]
    cite = answer["citations"][0]
    assert cite["doc_id"] == "zephyrine.md"
    text = c.get("/documents/zephyrine.md").json()["text"]
    assert text[cite["start"] : cite["end"]] == answer["answer"]
    assert c.get(cite["url"]).status_code == 200  # the view still routes under the writes

    listed = {d["doc_id"]: d for d in c.get("/documents").json()["documents"]}
    entry = listed["zephyrine.md"]
    assert (entry["format"], entry["origin"], entry["pages"]) == ("markdown", "upload", None)
    assert entry["sha256"] and entry["added_at"] and entry["updated_at"]
    assert listed["harbour.txt"]["origin"] == "folder"

    before = generation(pipeline)
    again = c.post("/documents", files=md("zephyrine.md"), headers=AUTH)
    assert again.status_code == 200 and again.json()["documents"][0]["status"] == "unchanged"
    assert generation(pipeline) == before
    assert [d["doc_id"] for d in c.get("/documents").json()["documents"]].count("zephyrine.md") == 1

    clash = c.post("/documents", files=md("zephyrine.md", FACT + b"More.\n"), headers=AUTH)
    assert error_code(clash, 409) == "document_exists" and "PUT" in clash.json()["error"]["message"]

    new = b"The Zephyrine Observatory was founded by the astronomer Tomas Orrin in 1950.\n"
    replaced = c.put("/documents/zephyrine.md", files=[("file", ("z.md", new))], headers=AUTH)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["documents"][0]["status"] == "replaced"
    assert "Tomas Orrin" in (ask(c, FOUNDER)["answer"] or "")
    assert ask(c, TELESCOPE)["abstained"]  # the old version's fact is gone

    deleted = c.delete("/documents/zephyrine.md", headers=AUTH)
    assert deleted.json() == {"doc_id": "zephyrine.md", "deleted": True}
    assert ask(c, FOUNDER)["abstained"]
    assert error_code(c.get("/documents/zephyrine.md"), 404) == "unknown_document"
    assert error_code(c.delete("/documents/zephyrine.md", headers=AUTH), 404) == "unknown_document"
    unknown = c.put("/documents/nope.md", json={"text": "x y z"}, headers=AUTH)
    assert error_code(unknown, 404) == "unknown_document"


def test_json_text_upload(c: TestClient) -> None:
    text = "The Quorn Bridge spans the river Alde. It was opened in 1902 by mayor Edwin Sallow."
    created = c.post("/documents", json={"text": text, "title": "Quorn Bridge"}, headers=AUTH)
    assert created.status_code == 201, created.text
    [doc] = created.json()["documents"]
    assert doc["doc_id"].startswith("text-") and doc["doc_id"].endswith(".txt")
    assert doc["title"] == "Quorn Bridge"
    assert c.get(f"/documents/{doc['doc_id']}").json()["format"] == "text"
    answer = ask(c, "Who opened the Quorn Bridge?")
    assert "Edwin Sallow" in (answer["answer"] or "")
    named = c.post(
        "/documents", json={"doc_id": "notes/alde.txt", "text": "Alde notes."}, headers=AUTH
    )
    assert named.json()["documents"][0]["doc_id"] == "notes/alde.txt"
    assert c.delete("/documents/notes/alde.txt", headers=AUTH).status_code == 200


# -- refusals: nothing written, /ask still answers ---------------------------------------------
def test_writes_are_off_without_a_token(settings: Settings, pipeline: AskPipeline) -> None:
    before = generation(pipeline)
    with client_of(settings, pipeline, admin_token=None) as off:
        for response in (
            off.post("/documents", files=md("off.md"), headers=AUTH),
            off.put("/documents/harbour.txt", json={"text": "x"}, headers=AUTH),
            off.delete("/documents/harbour.txt", headers=AUTH),
        ):
            assert error_code(response, 403) == "writes_disabled"
            assert "VERBATIM_ADMIN_TOKEN" in response.json()["error"]["message"]
        assert off.get("/documents").status_code == 200  # reads stay open
    assert generation(pipeline) == before


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),
        ("", {"Authorization": "Bearer wrong-token-0123456789"}),
        ("", {"Authorization": TOKEN}),
        (f"?token={TOKEN}", {}),
        (f"?access_token={TOKEN}", {}),
        (f"?token={TOKEN}", AUTH),
    ],
)
def test_writes_need_the_token_in_the_header(
    c: TestClient, pipeline: AskPipeline, query: str, headers: dict
) -> None:
    before = generation(pipeline)
    for response in (
        c.post(f"/documents{query}", files=md("sneaky.md"), headers=headers),
        c.put(f"/documents/harbour.txt{query}", json={"text": "x"}, headers=headers),
        c.delete(f"/documents/harbour.txt{query}", headers=headers),
    ):
        assert error_code(response, 401) == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
        if "token=" in query:
            assert "Authorization" in response.json()["error"]["message"]
    assert generation(pipeline) == before


MALFORMED = [
    (md("x.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog"), 422, "corrupt_document"),
    (md("x.docx", b"PK\x03\x04 not really a zip archive"), 422, "corrupt_document"),
    (md("empty.md", b""), 422, "empty_document"),
    (md("../../etc/passwd", b"root:x:0:0"), 422, "invalid_name"),
    (md("a/b.txt", b"nested"), 422, "invalid_name"),
    (md("..", b"dots"), 422, "invalid_name"),
    (md("a\\b.txt", b"backslash"), 422, "invalid_name"),
    (md("", b"no name"), 422, "invalid_name"),
    (md("scan.tiff", b"II*\x00"), 415, "unsupported_format"),
    (
        [("files", (f"f{i}.txt", b"some text", "text/plain")) for i in range(11)],
        413,
        "too_many_files",
    ),
    (md("ok.md", b"# Fine\n\nA fine file.\n") + md("bad.pdf", b"%PDF-"), 422, "corrupt_document"),
]


@pytest.mark.parametrize(("files", "status", "code"), MALFORMED)
def test_malformed_uploads_write_nothing(
    c: TestClient, pipeline: AskPipeline, files: list, status: int, code: str
) -> None:
    before = generation(pipeline)
    listed = c.get("/documents").json()["count"]
    assert error_code(c.post("/documents", files=files, headers=AUTH), status) == code
    assert generation(pipeline) == before and c.get("/documents").json()["count"] == listed
    assert "Mara Quill" in (ask(c, "Who designed the lighthouse at Kestrel Point?")["answer"] or "")


def raw_upload(filename: bytes, data: bytes) -> tuple[bytes, str]:
    """A multipart body with the file name as given (clients percent-encode control characters)."""
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="'
        + filename
        + b'"\r\nContent-Type: text/plain\r\n\r\n'
        + data
        + b"\r\n--b0undary--\r\n"
    )
    return body, "multipart/form-data; boundary=b0undary"


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (*raw_upload(b"tab\there.txt", b"control"), 422),
        (*raw_upload(b"bell\x07.txt", b"control"), 422),
        (*raw_upload(b"\xff\xfe.txt", b"not UTF-8"), 422),
        (*raw_upload(b"../up.txt", b"dots"), 422),
        (b"just some text", "text/plain", 415),
        (b"", None, 415),
        (b'{"text": ', "application/json", 422),
        (b'["text"]', "application/json", 422),
        (b'{"text": "x", "extra": 1}', "application/json", 422),
        (b"--nope\r\n", "multipart/form-data; boundary=nope", 422),
    ],
)
def test_bodies_that_are_no_upload(
    c: TestClient, pipeline: AskPipeline, content: bytes, content_type: str | None, status: int
) -> None:
    before = generation(pipeline)
    headers = {**AUTH, **({"content-type": content_type} if content_type else {})}
    error_code(c.post("/documents", content=content, headers=headers), status)
    assert generation(pipeline) == before


def test_upload_limits(settings: Settings, pipeline: AskPipeline) -> None:
    """Uploads may be larger than other bodies, up to max_upload_bytes a file."""
    before = generation(pipeline)
    limits = {"max_upload_bytes": 2048, "max_upload_files": 2}
    with client_of(settings, pipeline, **limits) as small:
        big = md("big.md", b"word " * 600)
        response = small.post("/documents", files=big, headers=AUTH)
        assert error_code(response, 413) == "body_too_large"
        assert "2048" in response.json()["error"]["message"]
        huge = md("huge.md", b"word " * 40_000)  # over the whole request's limit
        assert (
            error_code(small.post("/documents", files=huge, headers=AUTH), 413) == "body_too_large"
        )
        question = {"question": "Who designed the lighthouse? " + "x" * 20_000}
        assert error_code(small.post("/ask", json=question), 413) == "body_too_large"
    assert generation(pipeline) == before


def test_large_uploads_run_as_a_job(settings: Settings, pipeline: AskPipeline) -> None:
    with client_of(settings, pipeline, upload_sync_bytes=0) as c:
        data = b"# Fenwick Mill\n\nThe Fenwick Mill grinds barley. Its miller is Hollis Crane.\n"
        queued = c.post("/documents", files=md("fenwick.md", data), headers=AUTH)
        assert queued.status_code == 202, queued.text
        body = queued.json()
        assert body["documents"] == [] and body["job"]["state"] in ("queued", "running", "done")
        assert queued.headers["location"] == f"/jobs/{body['job']['id']}"
        deadline = time.monotonic() + 60
        while (job := c.get(queued.headers["location"]).json())["state"] != "done":
            assert job["state"] != "failed" and time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["progress"] == 1 and job["error"] is None
        assert [(d["doc_id"], d["status"]) for d in job["documents"]] == [("fenwick.md", "added")]
        assert "Hollis Crane" in (ask(c, "Who is the miller of the Fenwick Mill?")["answer"] or "")
        assert error_code(c.get("/jobs/no-such-job"), 404) == "unknown_job"
        assert c.delete("/documents/fenwick.md", headers=AUTH).status_code == 200


def test_cors_allows_authorized_writes(settings: Settings, pipeline: AskPipeline) -> None:
    with client_of(settings, pipeline, cors_origins=["https://admin.example"]) as c:
        preflight = c.options(
            "/documents/x.md",
            headers={
                "Origin": "https://admin.example",
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert "PUT" in preflight.headers["access-control-allow-methods"]


def test_openapi_documents_the_writes(c: TestClient) -> None:
    paths = c.get("/openapi.json").json()["paths"]
    post = paths["/documents"]["post"]
    assert {"200", "201", "202", "401", "403", "409", "413", "415", "422"} <= set(post["responses"])
    content = post["requestBody"]["content"]
    assert content["multipart/form-data"]["schema"]["properties"]["files"]["type"] == "array"
    assert "text" in content["application/json"]["schema"]["properties"]
    assert post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/WriteResult"
    )
    writes = paths["/documents/{doc_id}"]
    assert {"get", "put", "delete"} <= set(writes) and "get" in paths["/documents/{doc_id}/view"]
    assert writes["delete"]["responses"]["200"]["content"]["application/json"]["schema"][
        "$ref"
    ].endswith("/Deleted")
    assert paths["/jobs/{job_id}"]["get"]["responses"]["200"]["content"]


def test_the_body_limit_of_other_routes_is_unchanged(c: TestClient, settings: Settings) -> None:
    big = b'{"question": "' + b"x" * settings.max_body_bytes + b'"}'
    response = c.post("/ask", content=big, headers={"content-type": "application/json"})
    assert error_code(response, 413) == "body_too_large"
    assert str(settings.max_body_bytes) in response.json()["error"]["message"]


def test_a_pdf_page_without_text_is_reported_in_the_response(c: TestClient) -> None:
    from test_formats import make_pdf

    pdf = make_pdf([["The Varrow Island ferry leaves at a quarter past eleven."], []])
    response = c.post("/documents", files=[("files", ("scan.pdf", pdf))], headers=AUTH)
    assert response.status_code == 201, response.text
    [written] = response.json()["documents"]
    assert written["doc_id"] == "scan.pdf"
    assert any("2" in w and "no text" in w for w in written["warnings"]), written
    assert c.delete("/documents/scan.pdf", headers=AUTH).status_code == 200
