"""Pure URL helpers: the crawler's comparison form of a link, host keys, safety checks.

`normalize_url` leans on w3lib's `canonicalize_url` (safe quoting, upper-case percent
escapes, unreserved characters decoded, query sorted, fragment dropped, dot segments
resolved, IPv6 compressed). Around it we add what w3lib leaves alone: UTS #46 host names
(the `idna` package's mapping table, as browsers do), legacy IPv4 forms, default ports and
tracking parameters.

Hand-written where no dependency does it: the URL Standard's reading of `http:/x`,
`http:\\\\x` and `///x` (urllib and w3lib follow RFC 3986 there), escaping a stray `%`,
dropping `utm_*` by prefix (w3lib's `url_query_cleaner` only takes exact names), and
`redact_url`, which edits the string in place because any parse/unparse would re-quote it.

Choices made on purpose:
- A trailing slash on a non-empty path is kept: `/a` and `/a/` are different resources on
  many servers (RFC 3986 §6.2.3 only equates an *empty* path with `/`).
- "Site" means the host without a leading `www.`. We carry no public-suffix list, so
  `a.example.co.uk` and `b.example.co.uk` are different sites; that errs towards treating
  a link as external, which only costs a crawl some depth.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from urllib.parse import ParseResult, unquote, unquote_plus, urljoin, urlsplit, urlunsplit

import idna
from w3lib.url import canonicalize_url, parse_url

HTTP_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}

# Click-tracking and campaign parameters that never change what a page shows.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid",
        "igshid", "_ga", "_gl", "yclid", "ref_src", "ref_url", "twclid", "ttclid",
        "li_fat_id", "mkt_tok", "_hsenc", "_hsmi", "oly_anon_id", "oly_enc_id", "vero_id",
        "wickedid", "s_cid",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_",)

# Query (and fragment) parameters whose values must not reach logs or reports.
SECRET_PARAMS = frozenset(
    {
        "token", "access_token", "refresh_token", "id_token", "auth_token", "private_token",
        "api_key", "apikey", "key", "secret", "client_secret", "password", "passwd", "pwd",
        "sig", "signature", "auth", "session", "sessionid", "session_id", "jsessionid",
        "phpsessid", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
        "x-goog-signature", "x-goog-credential",
    }
)  # fmt: skip
REDACTED = "***"

FRONT_PAGE_PATHS = frozenset({"", "/", "/index.html", "/index.php", "/home"})

# 100.64.0.0/10 (RFC 6598) is neither `is_private` nor `is_global` in Python 3.11.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

# A host whose last label is a number is an IPv4 address in the URL Standard (§3.5,
# "ends in a number"); these are its legacy spellings such as 0x7f.1 or 2130706433.
_LEGACY_IPV4_RE = re.compile(r"(?:(?:0x[0-9a-f]*|[0-9]+)\.){0,3}(?:0x[0-9a-f]*|[0-9]+)\.?")
_AUTHORITY_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*:[/\\]{2})([^/?#\\]*)")
_SECRET_PAIR_RE = re.compile(r"([^&;=#?]*)=([^&;#]*)")
_SPECIAL_SCHEME_RE = re.compile(r"^(https?|wss?|ftp):[/\\]*", re.IGNORECASE)
_LEADING_SLASHES_RE = re.compile(r"^/{2,}")
_STRAY_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# URL Standard §3.2 "forbidden domain code point".
_FORBIDDEN_HOST_RE = re.compile(r"[\x00-\x20#/:<>?@\[\\\]^|%\x7f]")
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})


# A crawl asks about the same URL many times (dedupe, limits, classification): the pure
# functions below are cached. Bounded, so a 100,000-link page cannot grow them without end.
URL_CACHE_SIZE = 16384


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def normalize_url(url: str) -> str:
    """Return the crawler's comparison form of `url` (equal output means "same link")."""
    text = url.strip()
    # A "%" that starts no escape is written "%25" (RFC 3986 §2.4), or w3lib's decoding of
    # "%41" in "%a%41" would make a new escape "%aA" and break idempotence.
    escaped = _STRAY_PERCENT_RE.sub("%25", _special_slashes(text))
    try:
        parsed = parse_url(escaped)
        return _drop_tracking(canonicalize_url(_with_ascii_netloc(parsed)))
    except (ValueError, UnicodeError):
        return text


def _with_ascii_netloc(parsed: ParseResult) -> ParseResult:
    """Rewrite the authority with an ASCII host and without the scheme's default port."""
    scheme = parsed.scheme.lower()
    if not parsed.hostname and scheme in _SPECIAL_SCHEMES:
        raise ValueError("an http(s), ws(s) or ftp URL needs a host")  # as the URL Standard
    if parsed.hostname is None:
        return parsed
    host = _ascii_host(parsed.hostname)
    port = parsed.port  # raises ValueError on a bad port: caught by the caller
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    return parsed._replace(scheme=scheme, netloc=_userinfo(parsed) + netloc)


def _userinfo(parsed: ParseResult) -> str:
    """`user:pass@` as the URL Standard serializes it: empty parts are left out."""
    user, password = parsed.username or "", parsed.password or ""
    if password:
        return f"{user}:{password}@"
    return f"{user}@" if user else ""


def _ascii_host(hostname: str) -> str:
    """Lowercase, percent-decode and IDNA-encode a host; legacy IPv4 forms become dotted quads.

    Raises ValueError for a host the URL Standard rejects (a forbidden domain code point).
    """
    host = unquote(hostname).lower()
    if ":" in host:  # IPv6 literal, already validated by the parser
        return host
    if not host.isascii() or "xn--" in host:
        host = _uts46_to_ascii(host)
    if _FORBIDDEN_HOST_RE.search(host):
        raise ValueError(f"forbidden code point in host {host!r}")
    if _LEGACY_IPV4_RE.fullmatch(host):
        return _legacy_ipv4(host) or host
    return host


def _legacy_ipv4(host: str) -> str | None:
    """Dotted-quad form of a numeric host such as `0x7f.1`, or None if out of range."""
    try:
        # inet_aton reads the same hex/octal/short forms as the URL Standard's IPv4 parser.
        parts = ["0" if part == "0x" else part for part in host.removesuffix(".").split(".")]
        return socket.inet_ntoa(socket.inet_aton(".".join(parts)))
    except OSError:
        return None


def _uts46_to_ascii(host: str) -> str:
    """UTS #46 ToASCII with CheckHyphens off, as the URL Standard's domain-to-ASCII asks."""
    try:
        mapped = idna.uts46_remap(host, std3_rules=False)
    except idna.IDNAError:
        return host
    # The idna package's encode() also enforces CheckHyphens and DNS lengths, which the
    # URL Standard turns off, so labels are punycoded here instead.
    labels = [
        label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
        for label in mapped.split(".")
    ]
    return ".".join(labels)


def _drop_tracking(url: str) -> str:
    """Remove tracking parameters from an already canonical URL's query."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [pair for pair in parts.query.split("&") if not _is_tracking(pair)]
    return urlunsplit(parts._replace(query="&".join(kept)))


def _is_tracking(pair: str) -> bool:
    """True if a `name=value` query pair is a tracking parameter."""
    name = unquote_plus(pair.partition("=")[0]).lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def is_http_url(url: str) -> bool:
    """True if `url` is an http(s) URL with a valid host."""
    authority = _authority(url)
    return authority is not None and authority[0] in HTTP_SCHEMES


def request_url(url: str) -> str:
    """`url` spelled for an HTTP client: trimmed, `http:/x` and `http:\\\\x` read as `http://x`."""
    return _special_slashes(url.strip())


def _special_slashes(url: str) -> str:
    """`http:/x`, `http:\\\\x` or `http:x` spelled `http://x` (a special scheme's authority).

    The same as `_SPECIAL_SCHEME_RE.sub(r"\\1://", url, count=1)`, without expanding the
    replacement template on every call (it runs for every URL a crawl touches).
    """
    match = _SPECIAL_SCHEME_RE.match(url)
    if match is None:
        return url
    if match.end() == match.end(1) + 3 and url.startswith("://", match.end(1)):
        return url  # spelled so already: the same string, not an equal copy
    return f"{match.group(1)}://{url[match.end() :]}"


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def host_key(url: str) -> str:
    """The `host:port` used for per-host limits, port always explicit; "" without a host."""
    authority = _authority(url)
    if authority is None:
        return ""
    scheme, host, port = authority
    port = port if port is not None else DEFAULT_PORTS.get(scheme)
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def site_of(url: str) -> str:
    """The host with a leading `www.` removed (no public-suffix list); "" without a host."""
    authority = _authority(url)
    return authority[1].removeprefix("www.") if authority else ""


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def _authority(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, ASCII host, port) of `url`, or None when it has no valid host."""
    try:
        parsed = parse_url(_special_slashes(url.strip()))
        host = _ascii_host(parsed.hostname) if parsed.hostname else ""
        port = parsed.port
    except (ValueError, UnicodeError):
        return None
    return (parsed.scheme.lower(), host, port) if host else None


def is_same_site(a: str, b: str) -> bool:
    """True if both URLs have a host and the same site (see `site_of`)."""
    site = site_of(a)
    return bool(site) and site == site_of(b)


def is_private_address(ip: str) -> bool:
    """True for addresses a crawler must not fetch: loopback, private, link-local, metadata..."""
    address = _parse_address(ip)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            # ::ffff:0:0/96 is itself "private" and "reserved" in Python 3.11; judge the IPv4.
            return _is_private_v4_or_v6(address.ipv4_mapped)
        if address.sixtofour is not None and _is_private_v4_or_v6(address.sixtofour):
            return True
    return _is_private_v4_or_v6(address)


def _parse_address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse an IP literal, also in brackets or in a legacy IPv4 spelling; None if not an IP."""
    text = ip.strip().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_IPV4_RE.fullmatch(text.lower()):
        dotted = _legacy_ipv4(text.lower())
        return ipaddress.IPv4Address(dotted) if dotted else None
    return None


def _is_private_v4_or_v6(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The checks shared by both address families."""
    return (
        address in METADATA_ADDRESSES
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv4Address) and address in SHARED_ADDRESS_SPACE)
    )


def redact_url(url: str) -> str:
    """Hide credentials and secret-looking query values; every other character is kept."""
    url = _AUTHORITY_RE.sub(_redact_userinfo, url, count=1)
    head, mark, rest = url.partition("?")
    if not mark:
        head, mark, rest = url.partition("#")
    return head + mark + _SECRET_PAIR_RE.sub(_redact_pair, rest)


def _redact_userinfo(match: re.Match[str]) -> str:
    """Replace the `user:pass@` part of an authority with `***@`."""
    authority = match.group(2)
    if "@" not in authority:
        return match.group(0)
    return f"{match.group(1)}{REDACTED}@{authority.rpartition('@')[2]}"


def _redact_pair(match: re.Match[str]) -> str:
    """Replace the value of one `name=value` pair when the name looks secret."""
    name = unquote_plus(match.group(1)).strip().lower()
    if name not in SECRET_PARAMS or not match.group(2):
        return match.group(0)
    return f"{match.group(1)}={REDACTED}"


def join_url(base: str, ref: str) -> str | None:
    """Resolve `ref` against `base`; None if the result is not a parseable absolute URL."""
    base, ref = base.strip(), ref.strip()
    try:
        joined = urljoin(base, _special_reference(base, ref))
        parsed = parse_url(joined)
        parsed.port  # noqa: B018 - validates the port
    except ValueError:
        return None
    return joined if parsed.scheme else None


def _special_reference(base: str, ref: str) -> str:
    """Spell `ref` so that urljoin reads it as the URL Standard does against a special base."""
    base_scheme = _scheme_of(base)
    ref_scheme = _scheme_of(ref)
    if ref_scheme and ref_scheme != base_scheme:
        # Another scheme: for a special one any run of slashes starts the authority.
        return _special_slashes(ref)
    if base_scheme not in _SPECIAL_SCHEMES:
        return ref
    # Same special scheme ("http:foo"): what follows the colon is relative to the base.
    ref = ref[len(ref_scheme) + 1 :] if ref_scheme else ref
    cut = min((i for i in (ref.find("?"), ref.find("#")) if i >= 0), default=len(ref))
    ref = ref[:cut].replace("\\", "/") + ref[cut:]
    return _LEADING_SLASHES_RE.sub("//", ref, count=1)


def _scheme_of(url: str) -> str:
    """The lowercased scheme of `url`, or "" for a relative reference."""
    match = _SCHEME_RE.match(url)
    return match.group(1).lower() if match else ""


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def is_front_page(url: str) -> bool:
    """True if `url` points at a site's front page: `/`, empty or an index path, no query.

    Asked of every page read, for its URL and its canonical URL (mostly the same string).
    """
    try:
        parsed = parse_url(url.strip())
    except ValueError:
        return False
    return not parsed.query and parsed.path.lower() in FRONT_PAGE_PATHS
