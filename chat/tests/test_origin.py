"""The socket's Origin check compares whole origins: scheme, host and port."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def host(value: str) -> list[tuple[bytes, bytes]]:
    """A Host header for the handshake."""
    return [(b"host", value.encode())]


async def test_same_origin_handshake_is_accepted(connect, alice):
    """The page's own origin (Host header, served scheme, same port) may open a socket."""
    await connect(alice, origin="http://localhost")
    await connect(alice, origin="http://127.0.0.1:8000", headers=host("127.0.0.1:8000"))
    await connect(alice, origin="http://localhost:80", headers=host("localhost"))


@pytest.mark.parametrize(
    ("origin", "host_header"),
    [
        ("http://localhost:9999", "localhost"),  # other port
        ("http://127.0.0.1:8001", "127.0.0.1:8000"),  # other port
        ("https://127.0.0.1", "127.0.0.1"),  # other scheme (the socket is ws, not wss)
        ("http://127.0.0.1", "localhost"),  # other host, though an allowed one
        ("http://evil.example", "localhost"),  # other host
        ("http://evil.example", "evil.example"),  # a Host not in ALLOWED_HOSTS
        ("null", "localhost"),  # sandboxed frame or file:// page
        ("http://localhost/path", "localhost"),  # not an origin
    ],
)
async def test_cross_origin_handshake_is_refused_with_403(connect, alice, origin, host_header):
    """Another port, scheme or host, or a null origin, is refused before authentication."""
    await connect(alice, origin=origin, headers=host(host_header), expect=False)


async def test_wss_behind_a_tls_proxy_takes_its_scheme_from_x_forwarded_proto(
    settings, connect, alice
):
    """Behind BEHIND_TLS_PROXY the page was https when X-Forwarded-Proto says so."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = [(b"host", b"localhost"), (b"x-forwarded-proto", b"https")]
    await connect(alice, origin="https://localhost", headers=proxied)
    await connect(alice, origin="http://localhost", headers=proxied, expect=False)
    await connect(alice, origin="https://localhost", expect=False)  # no header: plain http


async def test_trusted_origins_are_accepted_exactly(settings, connect, alice):
    """A CSRF_TRUSTED_ORIGINS entry is accepted with its scheme and port, and only those."""
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com", "http://tools.example:8080"]
    await connect(alice, origin="https://chat.example.com")
    await connect(alice, origin="https://chat.example.com:443")
    await connect(alice, origin="http://tools.example:8080")
    await connect(alice, origin="http://chat.example.com", expect=False)
    await connect(alice, origin="https://chat.example.com:8443", expect=False)
    await connect(alice, origin="http://tools.example", expect=False)
    await connect(alice, origin="https://evil.chat.example.com", expect=False)


async def test_wildcard_trusted_origin_accepts_subdomains(settings, connect, alice):
    """``https://*.example.com`` accepts any subdomain over https, not other schemes or sites."""
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com"]
    await connect(alice, origin="https://a.example.com")
    await connect(alice, origin="https://b.c.example.com")
    await connect(alice, origin="http://a.example.com", expect=False)
    await connect(alice, origin="https://a.example.com.evil.org", expect=False)
    await connect(alice, origin="https://notexample.com", expect=False)


async def test_missing_origin_goes_on_to_authentication(connect, alice):
    """A non-browser client sends no Origin: the handshake is accepted, auth decides."""
    sock = await connect(alice, origin=None)
    await sock.send({"command": "join", "room": 0, "ref": 1})
    assert (await sock.raw())["error"] == "ROOM_INVALID"
