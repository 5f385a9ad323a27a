"""The chat widget's script and its demo page, outside the API's schema."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.security import DEMO_CSP

STATIC = Path(__file__).resolve().parent.parent / "static"
SCRIPT = "text/javascript; charset=utf-8"

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
