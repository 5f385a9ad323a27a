"""Swagger UI served from the installed ``swagger-ui-bundle`` package, so /docs works offline."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from api.errors import ApiError
from api.security import docs_csp

ASSETS = "/docs-assets"
# Only what /docs loads: not the bundle's stock index.html or oauth2-redirect.html.
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def install_offline_docs(app: FastAPI) -> None:
    """Serve /docs with Swagger UI's scripts and styles from this process, not from a CDN."""

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        if name not in ASSET_TYPES:
            raise ApiError(404, "not_found", f"there is no GET {ASSETS}/{name} endpoint")
        return FileResponse(Path(swagger_ui_path) / name, media_type=ASSET_TYPES[name])

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
        html = bytes(page.body).decode()
        return HTMLResponse(html, headers={"Content-Security-Policy": docs_csp(html)})
