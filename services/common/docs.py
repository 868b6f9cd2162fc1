"""API docs that work on a network without the internet: Swagger UI and ReDoc from installed files.

FastAPI's default pages load their scripts from a CDN, so on a government intranet `/docs` is a
blank page. The `fastapi-offline` package ships the Swagger UI and ReDoc bundles; they are mounted
here as static files and the pages point at them by same-origin paths. Swagger UI's online spec
validator (a badge that calls swagger.io) is switched off for the same reason.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PATH = "/docs-assets"
SWAGGER_JS = f"{ASSETS_PATH}/swagger-ui-bundle.js"
SWAGGER_CSS = f"{ASSETS_PATH}/swagger-ui.css"
REDOC_JS = f"{ASSETS_PATH}/redoc.standalone.js"
FAVICON = f"{ASSETS_PATH}/favicon.png"

# The platform's mime table decides what StaticFiles answers; pin the two that matter for a browser
# loading a script or a stylesheet (some systems map .js to application/x-javascript).
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")


def docs_router(openapi_url: str, title: str) -> APIRouter:
    """`/docs` (Swagger UI) and `/redoc` for the document at `openapi_url`."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=title, swagger_js_url=SWAGGER_JS,
                                   swagger_css_url=SWAGGER_CSS, swagger_favicon_url=FAVICON,
                                   swagger_ui_parameters={"validatorUrl": None})

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=title, redoc_js_url=REDOC_JS,
                              redoc_favicon_url=FAVICON, with_google_fonts=False)

    return router


def install_docs(app: FastAPI, *, openapi_url: str, title: str) -> None:
    app.include_router(docs_router(openapi_url, title))
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
