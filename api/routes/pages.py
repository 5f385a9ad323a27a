"""The chat widget's script, its demo page and the admin page, outside the API's schema."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.security import DEMO_CSP

STATIC = Path(__file__).resolve().parent.parent / "static"
# The admin page needs what the demo page does: its script, its <style>, fetch to this origin.
ADMIN_CSP = DEMO_CSP

router = APIRouter(include_in_schema=False)


def script(name: str) -> FileResponse:
    """A script of ours, revalidated on every load so a new version is never stale."""
    return FileResponse(
        STATIC / name,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


def page(name: str, csp: str) -> FileResponse:
    return FileResponse(
        STATIC / name,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": csp},
    )


@router.get("/widget.js")
async def widget() -> FileResponse:
    return script("widget.js")


@router.get("/demo.js")
async def demo_script() -> FileResponse:
    return script("demo.js")


@router.get("/")
async def demo() -> FileResponse:
    return page("demo.html", DEMO_CSP)


@router.get("/admin.js")
async def admin_script() -> FileResponse:
    return script("admin.js")


@router.get("/admin")
async def admin() -> FileResponse:
    """The admin page: list, upload and delete documents (writes need the admin token)."""
    return page("admin.html", ADMIN_CSP)
