"""The crawl's aiohttp transport behind httpx's interface, against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from crawler.config import FetchSettings
from crawler.fetch import build_client
from crawler.fetch.transport import AiohttpTransport, to_httpx_error
from tests.servers import ThreadedServer

pytestmark = pytest.mark.timeout(30)


class EchoServer(ThreadedServer):
    """Answers with what it was sent; a few paths misbehave on purpose."""

    lifetime = 60.0

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/cut":  # promises 100,000 bytes, sends 10, hangs up
            response = web.StreamResponse(headers={"Content-Length": "100000"})
            await response.prepare(request)
            await response.write(b"0123456789")
            assert request.transport is not None
            request.transport.close()
            return response
        if request.path == "/sleep":
            await self.wait_or_stop(5.0)
        body = await request.read()
        headers = [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")]
        response = web.json_response(
            {
                "method": request.method,
                "raw_path": request.raw_path,
                "headers": [[k, v] for k, v in request.headers.items()],
                "body": body.decode("latin-1"),
            },
            status=299 if request.path == "/odd-status" else 200,
            reason="Fine Thanks" if request.path == "/odd-status" else None,
        )
        for name, value in headers:
            response.headers.add(name, value)
        return response


@pytest.fixture(scope="module")
def server() -> Iterator[EchoServer]:
    with EchoServer() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = AiohttpTransport(lambda: aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()))
    async with httpx.AsyncClient(transport=transport, timeout=5.0) as http:
        yield http


async def echo(client: httpx.AsyncClient, url: str, **kwargs: Any) -> dict[str, Any]:
    response = await client.request(kwargs.pop("method", "GET"), url, **kwargs)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


async def test_the_url_goes_out_as_httpx_encoded_it(
    server: EchoServer, client: httpx.AsyncClient
) -> None:
    """Not decoded and quoted again by aiohttp: an encoded slash stays encoded, a space and a
    non-ASCII letter arrive percent-encoded exactly once."""
    url = server.url("/a%2Fb/caf\u00e9 x?q=1%202&r=%7E")
    seen = await echo(client, url)
    assert seen["raw_path"] == str(httpx.URL(url).raw_path, "ascii")
    assert seen["raw_path"] == "/a%2Fb/caf%C3%A9%20x?q=1%202&r=%7E"


async def test_headers_status_reason_and_repeated_headers(
    server: EchoServer, client: httpx.AsyncClient
) -> None:
    response = await client.get(server.url("/odd-status"), headers={"X-Thing": "one"})
    assert response.status_code == 299
    assert response.reason_phrase == "Fine Thanks"
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    sent = {name.lower(): value for name, value in response.json()["headers"]}
    assert sent["x-thing"] == "one"
    assert sent["host"] == server.base_url.removeprefix("http://")
    assert response.extensions["http_version"] == b"HTTP/1.1"


async def test_the_crawls_session_keeps_no_cookies_of_its_own(server: EchoServer) -> None:
    """Cookies are the httpx client's business (one jar, not two): once the crawl's client has
    forgotten the two cookies the first answer set, the next request carries none. (By name:
    aiohttp's own jar would ignore cookies from an address literal.)"""
    settings = FetchSettings(allow_private_networks=True)
    by_name = server.base_url.replace("127.0.0.1", "localhost")
    async with build_client(settings) as http:
        await http.get(by_name + "/first")
        assert {cookie.name for cookie in http.cookies.jar} == {"a", "b"}
        http.cookies.clear()
        seen = await echo(http, by_name + "/second")
    assert "cookie" not in {name.lower() for name, _ in seen["headers"]}


async def test_a_request_body_is_sent(server: EchoServer, client: httpx.AsyncClient) -> None:
    seen = await echo(client, server.url("/post"), method="POST", content=b"x=1&y=\xff")
    assert (seen["method"], seen["body"]) == ("POST", "x=1&y=\xff")
    seen = await echo(client, server.url("/get"), method="GET", content=b"odd but allowed")
    assert (seen["method"], seen["body"]) == ("GET", "odd but allowed")


async def test_a_body_is_streamed_in_pieces(server: EchoServer, client: httpx.AsyncClient) -> None:
    async with client.stream("GET", server.url("/stream?" + "x" * 2000)) as response:
        pieces = [piece async for piece in response.aiter_raw()]
    assert b"".join(pieces).startswith(b"{")
    assert response.num_bytes_downloaded == sum(map(len, pieces))


async def test_a_refused_connection_is_httpx_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpx.ConnectError) as caught:
        await client.get(f"http://127.0.0.1:{port}/")
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)


async def test_a_body_cut_short_is_httpx_read_error(
    server: EchoServer, client: httpx.AsyncClient
) -> None:
    async with client.stream("GET", server.url("/cut")) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.ReadError) as caught:
            await response.aread()
    assert isinstance(caught.value.__cause__, aiohttp.ClientPayloadError)


async def test_the_read_timeout_applies(server: EchoServer) -> None:
    transport = AiohttpTransport(aiohttp.ClientSession)
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, read=0.2)) as http:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(httpx.TimeoutException):
            await http.get(server.url("/sleep"))
        assert loop.time() - started < 3.0


def test_errors_without_an_httpx_counterpart_pass_through() -> None:
    """A malformed answer (aiohttp's ClientResponseError) is raised as aiohttp's own error;
    a server hanging up is httpx's RemoteProtocolError, as httpx's own transport has it."""
    assert to_httpx_error(aiohttp.ClientResponseError(None, (), status=400)) is None  # type: ignore[arg-type]
    assert isinstance(to_httpx_error(aiohttp.ServerDisconnectedError()), httpx.RemoteProtocolError)
