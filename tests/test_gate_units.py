"""Gate helpers that need no nginx: the way back after admission and the cookie attributes."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from waitingroom.gate import safe_return_path, set_gate_cookie


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/shop/item?id=7&x=1", "/shop/item?id=7&x=1"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/_waitingroom/poll", "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_return_path_stays_on_the_site(raw: str | None, expected: str) -> None:
    assert safe_return_path(raw) == expected


@pytest.mark.parametrize("secure", [True, False])
def test_gate_cookie_is_httponly_host_only_and_secure_in_production(secure: bool) -> None:
    resp = Response()
    set_gate_cookie(resp, "wr_admission_7", "tok", 600, secure=secure)
    header = resp.headers["set-cookie"].lower()
    assert header.startswith("wr_admission_7=tok;")
    assert "httponly" in header and "path=/" in header and "samesite=lax" in header
    assert "max-age=600" in header and "domain" not in header
    assert ("secure" in header) == secure
