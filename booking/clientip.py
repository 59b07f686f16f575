"""The client's IP address, computed once per request by a pure-ASGI middleware.

`X-Forwarded-For` is believed only when the TCP peer is one of TRUSTED_PROXIES (IPs or CIDRs;
empty = trust nobody, the peer is the client). The header is read right to left, skipping
addresses of trusted proxies: the first untrusted one is the client, so a client cannot choose
its own address by sending the header itself. Uvicorn's own proxy-header rewriting must be off
(`--no-proxy-headers`), otherwise the peer seen here is already a header's claim.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
STATE_KEY = "client_ip"


def parse_trusted(spec: str) -> list[Network]:
    """`"10.0.0.0/8, 127.0.0.1"` → networks; raises ValueError naming a bad entry."""
    networks: list[Network] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: not an IP or CIDR: {item!r}") from exc
    return networks


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def resolve_client_ip(peer: str, forwarded_for: Iterable[str], trusted: list[Network]) -> str:
    """The client address for a request from `peer` carrying these X-Forwarded-For values."""
    current = _ip(peer)
    if current is None:
        return peer or "unknown"
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    while trusted and any(current in net for net in trusted) and hops:
        previous = _ip(hops.pop())
        if previous is None:  # garbage from before our proxies: stop at the last good hop
            break
        current = previous
    return str(current)


class ClientIPMiddleware:
    def __init__(self, app: ASGIApp, trusted_proxies: str = "") -> None:
        self.app = app
        self.trusted = parse_trusted(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            peer = client[0] if client else ""
            forwarded = [
                v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"
            ]
            ip = resolve_client_ip(peer, forwarded, self.trusted)
            scope.setdefault("state", {})[STATE_KEY] = ip
        await self.app(scope, receive, send)


def client_ip(request: Request) -> str:
    """The address the middleware resolved (the TCP peer when it did not run)."""
    ip = request.scope.get("state", {}).get(STATE_KEY)
    if isinstance(ip, str):
        return ip
    return request.client.host if request.client else "unknown"
