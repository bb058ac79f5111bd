"""Swagger UI at ``/docs`` for the FHIR API's OpenAPI document, served offline: the page and its
assets come from the ``swagger-ui-bundle`` package (Apache-2.0), never a CDN, so the docs work
on a network without the internet and the page loads no third-party script."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

from closedloop import errors

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
SPEC_PATH = "/fhir/openapi.json"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/docs-init.js" data-spec="{spec}"></script>
</body>
</html>
"""

# the page's one script of its own, served with the assets (no inline script)
_INIT = b"""(function () {
  var spec = document.currentScript.getAttribute("data-spec");
  window.ui = SwaggerUIBundle({
    url: spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null
  });
})();
"""


# the files the page uses, and nothing else of the bundle (its demo index.html points at a
# petstore document on the internet)
_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}


def add_docs_routes(app: FastAPI, title: str) -> None:
    """``GET /docs`` (the page), ``/docs/assets/<file>`` (Swagger UI's files)."""

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = _PAGE.format(
            title=html.escape(title),
            assets=html.escape(root + ASSETS_PATH),
            spec=html.escape(root + SPEC_PATH),
        )
        return HTMLResponse(page)

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name == "docs-init.js":
            return Response(_INIT, media_type="text/javascript")
        if name not in _ASSETS:
            raise errors.not_found(f"No documentation asset {name!r}", cl_code="CL-1404")
        return FileResponse(
            Path(str(swagger_ui_path)) / name,
            media_type=_ASSETS[name],
            headers={"Cache-Control": "public, max-age=86400"},
        )
