"""The console's static files: served with a strict security policy, and nothing outside the folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.console_routes import CONSOLE_DIR, setup_console


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    app = web.Application()
    setup_console(app)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_shell_is_served_with_a_strict_policy(client: Any) -> None:
    resp = await client.get("/console/")
    assert resp.status == 200
    assert "js/app.js" in await resp.text()
    csp = resp.headers["Content-Security-Policy"]
    # No inline script and no other origin: a customer string that ever reached the DOM as markup
    # still could not run.
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"


async def test_bare_path_redirects_to_the_shell(client: Any) -> None:
    resp = await client.get("/console", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (302, "/console/")


@pytest.mark.parametrize("path,content_type", [
    ("js/app.js", "text/javascript"),
    ("js/dom.js", "text/javascript"),
    ("console.css", "text/css"),
])
async def test_assets_have_their_types(client: Any, path: str, content_type: str) -> None:
    resp = await client.get(f"/console/static/{path}")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith(content_type)
    assert "Content-Security-Policy" in resp.headers


@pytest.mark.parametrize("path", [
    "../console_routes.py",
    "..%2Fconsole_routes.py",
    "js/../../config.py",
    "index.html",  # the shell only at /console/, with its headers
    "js/missing.js",
    "%2e%2e/%2e%2e/pyproject.toml",
])
async def test_nothing_outside_the_console_folder(client: Any, path: str) -> None:
    resp = await client.get(f"/console/static/{path}")
    assert resp.status == 404


def test_every_module_the_shell_names_exists() -> None:
    """A renamed view file would otherwise show up only as a blank page in the browser."""
    import re

    shell = (CONSOLE_DIR / "index.html").read_text()
    app = (CONSOLE_DIR / "js" / "app.js").read_text()
    named = re.findall(r'/console/static/([\w/.-]+)', shell) + [
        f"js/{m}" for m in re.findall(r'"\./(views/[\w.-]+\.js)"', app)]
    assert named
    for rel in named:
        assert (CONSOLE_DIR / rel).is_file(), rel


def test_no_module_assigns_markup() -> None:
    """Customer text reaches the page only as text nodes; markup sinks are banned outright."""
    sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")
    for path in CONSOLE_DIR.rglob("*.js"):
        text = path.read_text()
        for sink in sinks:
            assert sink not in text, f"{path.name} uses {sink}"
