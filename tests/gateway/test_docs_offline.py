"""`/docs` and `/redoc` work without the internet (issue 11 item 2): every URL the pages load is
same-origin and answers with the right content type, at the gateway and at each service."""

from __future__ import annotations

import re

import httpx

PAGE_URLS = re.compile(r"""(?:src|href)="([^"]+)"|url: '([^']+)'|spec-url="([^"]+)\"""")
EXPECTED_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png"}


async def _check_page(client: httpx.AsyncClient, page: str, openapi_url: str) -> list[str]:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    urls = [next(u for u in match if u) for match in PAGE_URLS.findall(html)]
    assert openapi_url in urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind("."):]
        if suffix in EXPECTED_TYPES:
            assert asset.headers["content-type"] == EXPECTED_TYPES[suffix], url
            assert len(asset.content) > 1000
        else:
            assert asset.headers["content-type"] == "application/json"
    return urls


async def test_gateway_swagger_ui_and_redoc_load_only_same_origin_assets(gateway):
    swagger = await _check_page(gateway, "/docs", "/api/v1/openapi.json")
    assert sorted(swagger) == ["/api/v1/openapi.json", "/docs-assets/favicon.png", "/docs-assets/swagger-ui-bundle.js",
                               "/docs-assets/swagger-ui.css"]
    redoc = await _check_page(gateway, "/redoc", "/api/v1/openapi.json")
    assert sorted(redoc) == ["/api/v1/openapi.json", "/docs-assets/favicon.png", "/docs-assets/redoc.standalone.js"]
    # Swagger UI's online validator badge would call swagger.io from an intranet browser.
    assert '"validatorUrl": null' in (await gateway.get("/docs")).text


async def test_service_docs_load_only_same_origin_assets(partnership, rotation, training):
    for client in (partnership, rotation, training):
        assert sorted(await _check_page(client, "/docs", "/openapi.json")) == [
            "/docs-assets/favicon.png", "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css",
            "/openapi.json"]
        assert sorted(await _check_page(client, "/redoc", "/openapi.json")) == [
            "/docs-assets/favicon.png", "/docs-assets/redoc.standalone.js", "/openapi.json"]
