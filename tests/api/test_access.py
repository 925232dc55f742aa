"""Who may use the control port (api/access.py): public page, token, one-time login
links and the session cookie, Sec-Fetch-Site, a port bound beyond loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from liberation_node.api.access import MAX_LOGIN_CODES
from liberation_node.api.control import control_app

from .fakes import ME, Clock, ReplicaNode, error_of

TOKEN = "5e" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[web.Request, web.Application]
SAME = {"Sec-Fetch-Site": "same-origin"}

READS = ["/api/v1/status", "/api/v1/peers", "/api/v1/topology", "/api/v1/ledger",
         "/api/v1/ledger/humans", f"/api/v1/ledger/humans/{ME.text}",
         "/api/v1/ledger/transactions", "/api/v1/messages", "/api/v1/views", "/metrics"]
PUBLIC = ["/", "/static/app.js", "/static/style.css", "/favicon.svg", "/api/v1/health"]


@pytest.fixture
async def node() -> ReplicaNode:
    n = ReplicaNode()
    await n.register("ada")
    return n


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(node: ReplicaNode, clock: Clock) -> AsyncIterator[Client]:
    async with TestClient(TestServer(control_app(node, TOKEN, clock=clock))) as c:
        yield c


def origin(client: Client) -> dict[str, str]:
    return {"Origin": f"http://127.0.0.1:{client.server.port}"}


async def login(client: Client) -> dict[str, str]:
    """Follow a login link as a browser would; the Cookie header it then sends."""
    response = await client.post("/api/v1/login", headers=AUTH)
    assert response.status == 200
    url = URL((await response.json())["url"])
    assert (url.host, url.port, url.path) == ("127.0.0.1", client.server.port, "/login")
    landed = await client.get(url.path_qs, allow_redirects=False,
                              headers={"Sec-Fetch-Site": "none"})
    assert (landed.status, landed.headers["Location"]) == (303, "/")
    cookie = landed.headers["Set-Cookie"]
    name = f"ln_session_{client.server.port}"
    assert cookie.startswith(f"{name}=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie
    client.session.cookie_jar.clear()  # the test sends the cookie by hand
    return {"Cookie": cookie.split(";")[0]}


# -- what needs what --------------------------------------------------------------------


@pytest.mark.parametrize("path", READS)
async def test_reads_need_the_token_or_a_session(client: Client, path: str) -> None:
    message = await error_of(await client.get(path), 401)
    assert "liberation-node open" in message and "Bearer" in message
    assert (await client.get(path, headers=AUTH)).status == 200
    cookie = await login(client)
    assert (await client.get(path, headers={**cookie, **SAME})).status == 200


@pytest.mark.parametrize("path", PUBLIC)
async def test_the_page_its_assets_and_health_need_nothing(client: Client, path: str) -> None:
    assert (await client.get(path)).status == 200


async def test_a_wrong_token_is_refused_even_where_none_is_needed(client: Client) -> None:
    response = await client.get("/", headers={"Authorization": "Bearer nope"})
    await error_of(response, 401)


async def test_expensive_reads_are_not_served_to_other_pages(client: Client,
                                                             node: ReplicaNode) -> None:
    """issue 9 item 8: an <img src=".../api/v1/views"> on any site made the node build
    every view; now it needs credentials, and a cookie from another port's page
    (same site, other origin) is refused before any work."""
    for _ in range(6):
        await error_of(await client.get("/api/v1/views"), 401)
    cookie = await login(client)
    for site in ("same-site", "cross-site"):
        response = await client.get("/api/v1/views", headers={**cookie, "Sec-Fetch-Site": site})
        assert "Sec-Fetch-Site" in await error_of(response, 403)
    assert node.views_built == 0


async def test_parallel_view_loads_build_once(client: Client, node: ReplicaNode) -> None:
    answers = await asyncio.gather(*(client.get("/api/v1/views", headers=AUTH)
                                     for _ in range(6)))
    assert {a.status for a in answers} == {200}
    assert node.views_built == 1
    await node.post("news", "social", 1, None)
    assert (await client.get("/api/v1/views", headers=AUTH)).status == 200
    assert node.views_built == 2  # a new digest: built again


# -- login links ------------------------------------------------------------------------


async def test_login_needs_the_token_not_a_cookie(client: Client) -> None:
    await error_of(await client.post("/api/v1/login"), 401)
    cookie = await login(client)
    response = await client.post("/api/v1/login", headers={**cookie, **SAME, **origin(client)})
    await error_of(response, 401)


async def test_login_link_answer(client: Client, node: ReplicaNode) -> None:
    response = await client.post("/api/v1/login", headers=AUTH)
    body = await response.json()
    assert set(body) == {"url", "expires_ms"}
    assert body["expires_ms"] == node.now + 60_000


async def test_a_login_link_works_once(client: Client) -> None:
    url = URL((await (await client.post("/api/v1/login", headers=AUTH)).json())["url"])
    assert (await client.get(url.path_qs, allow_redirects=False)).status == 303
    again = await client.get(url.path_qs, allow_redirects=False)
    assert again.status == 403
    assert again.content_type == "text/html"
    assert "liberation-node open" in await again.text()
    assert "Set-Cookie" not in again.headers


async def test_a_head_request_does_not_spend_a_login_link(client: Client) -> None:
    url = URL((await (await client.post("/api/v1/login", headers=AUTH)).json())["url"])
    assert (await client.head(url.path_qs, allow_redirects=False)).status == 200
    assert (await client.get(url.path_qs, allow_redirects=False)).status == 303


async def test_a_login_link_expires_after_60_s(client: Client, clock: Clock) -> None:
    url = URL((await (await client.post("/api/v1/login", headers=AUTH)).json())["url"])
    clock.t += 60.5
    assert (await client.get(url.path_qs, allow_redirects=False)).status == 403


@pytest.mark.parametrize("code", ["", "x", "A" * 43, "A" * 5000])
async def test_made_up_codes_are_refused(client: Client, code: str) -> None:
    assert (await client.get(f"/login?code={code}", allow_redirects=False)).status == 403


async def test_outstanding_login_links_are_bounded(client: Client) -> None:
    urls = [URL((await (await client.post("/api/v1/login", headers=AUTH)).json())["url"])
            for _ in range(MAX_LOGIN_CODES + 1)]
    assert (await client.get(urls[0].path_qs, allow_redirects=False)).status == 403
    assert (await client.get(urls[-1].path_qs, allow_redirects=False)).status == 303


async def test_a_login_link_from_another_site_is_refused(client: Client) -> None:
    """Login CSRF: a page elsewhere cannot sign this browser in with the attacker's code."""
    url = URL((await (await client.post("/api/v1/login", headers=AUTH)).json())["url"])
    for site in ("cross-site", "same-site"):
        response = await client.get(url.path_qs, allow_redirects=False,
                                    headers={"Sec-Fetch-Site": site})
        await error_of(response, 403)
    assert (await client.get(url.path_qs, allow_redirects=False)).status == 303  # unspent


# -- the session cookie -----------------------------------------------------------------


async def test_the_cookie_writes_from_this_origin_only(client: Client,
                                                       node: ReplicaNode) -> None:
    cookie = await login(client)
    ok = await client.post("/api/v1/messages", json={"text": "hi"},
                           headers={**cookie, **SAME, **origin(client)})
    assert ok.status == 201
    held = len(node.replica.ops)
    for headers in ({**cookie, **SAME}, {**cookie, "Sec-Fetch-Site": "none", **origin(client)},
                    {**cookie, "Sec-Fetch-Site": "same-site", **origin(client)},
                    {**cookie, **SAME, "Origin": "http://127.0.0.1:1"}):
        response = await client.post("/api/v1/messages", json={"text": "x"}, headers=headers)
        await error_of(response, 403)
    assert len(node.replica.ops) == held


async def test_a_typed_url_may_read_with_the_cookie(client: Client) -> None:
    cookie = await login(client)
    response = await client.get("/api/v1/status", headers={**cookie, "Sec-Fetch-Site": "none"})
    assert response.status == 200


async def test_bad_and_expired_sessions_are_refused(client: Client, clock: Clock) -> None:
    name = f"ln_session_{client.server.port}"
    for value in ("nope", "A" * 43, "A" * 500):
        await error_of(await client.get("/api/v1/status",
                                        headers={"Cookie": f"{name}={value}", **SAME}), 401)
    cookie = await login(client)
    clock.t += 24 * 3600 + 1
    await error_of(await client.get("/api/v1/status", headers={**cookie, **SAME}), 401)


async def test_logout_ends_the_session(client: Client) -> None:
    cookie = await login(client)
    response = await client.post("/api/v1/logout", headers={**cookie, **SAME, **origin(client)})
    assert response.status == 200
    assert f"ln_session_{client.server.port}=\"\"" in response.headers["Set-Cookie"]
    await error_of(await client.get("/api/v1/status", headers={**cookie, **SAME}), 401)


async def test_a_cookie_is_for_one_port_only(node: ReplicaNode) -> None:
    """Cookies ignore ports: two nodes on one machine must not share a session."""
    async with TestClient(TestServer(control_app(node, TOKEN))) as one, \
            TestClient(TestServer(control_app(node, TOKEN))) as two:
        cookie = await login(one)
        _name, value = cookie["Cookie"].split("=", 1)
        moved = {"Cookie": f"ln_session_{two.server.port}={value}", **SAME}
        await error_of(await two.get("/api/v1/status", headers=moved), 401)


async def test_the_event_stream_takes_the_cookie(client: Client, node: ReplicaNode) -> None:
    cookie = await login(client)
    ws = await client.ws_connect("/api/v1/events", headers={**cookie, **SAME, **origin(client)})
    await node.subscribed()
    node.publish({"type": "user.action"})
    assert (await ws.receive_json(timeout=5))["type"] == "user.action"
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as failed:
        await client.ws_connect("/api/v1/events",
                                headers={**cookie, "Sec-Fetch-Site": "same-site",
                                         "Origin": "http://localhost:1"})
    assert failed.value.status == 403


# -- a control port beyond loopback -----------------------------------------------------


async def test_bound_beyond_loopback_everything_needs_the_token(
        node: ReplicaNode, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        app = control_app(node, TOKEN, bound="0.0.0.0")
    assert "not loopback" in caplog.text
    async with TestClient(TestServer(app)) as c:
        cookie = await login(c)  # a login link still works, but buys nothing here
        for path in [*READS, "/api/v1/health"]:
            message = await error_of(await c.get(path, headers={**cookie, **SAME}), 401)
            assert "not on loopback" in message
            elsewhere = {**AUTH, "Host": f"node.example:{8080}"}  # NAT, Docker -p 8080:7412
            assert (await c.get(path, headers=elsewhere)).status in (200, 503)
        for path in ("/", "/static/app.js"):
            assert (await c.get(path)).status == 200
        response = await c.post("/api/v1/messages", json={"text": "x"},
                                headers={**cookie, **SAME, **origin(c)})
        await error_of(response, 401)
