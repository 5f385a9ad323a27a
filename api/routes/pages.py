"""The chat widget's script, its demo page and the admin page, outside the API's schema."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.security import DEMO_CSP

STATIC = Path(__file__).resolve().parent.parent / "static"
SCRIPT = "text/javascript; charset=utf-8"
# The admin page needs what the demo page does: its script, its <style>, fetch to this origin.
ADMIN_CSP = DEMO_CSP

router = APIRouter(include_in_schema=False)


@router.get("/widget.js")
async def widget() -> FileResponse:
    return FileResponse(
        STATIC / "widget.js", media_type=SCRIPT, headers={"Cache-Control": "no-cache"}
    )


@router.get("/demo.js")
async def demo_script() -> FileResponse:
    return FileResponse(
        STATIC / "demo.js", media_type=SCRIPT, headers={"Cache-Control": "no-cache"}
    )


@router.get("/")
async def demo() -> FileResponse:
    return FileResponse(
        STATIC / "demo.html",
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": DEMO_CSP},
    )


@router.get("/admin.js")
async def admin_script() -> FileResponse:
    return FileResponse(
        STATIC / "admin.js", media_type=SCRIPT, headers={"Cache-Control": "no-cache"}
    )


@router.get("/admin")
async def admin() -> FileResponse:
    """The admin page: list, upload and delete documents (writes need the admin token)."""
    return FileResponse(
        STATIC / "admin.html",
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": ADMIN_CSP},
    )
