"""The request body limit, enforced while the body streams in (pure ASGI, so nothing buffers it).

A declared Content-Length above the limit is refused before a byte of the body is read; a
chunked body is counted as it arrives and refused the moment it passes the limit. Either way the
answer is 413 problem+json with `Connection: close`, so the server stops reading the rest.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking.errors import Problem, problem_response


class BodyTooLarge(Problem):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "body-too-large",
            f"request body is larger than {limit} bytes",
            headers={"Connection": "close"},
            max_bytes=limit,
        )


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses a malformed Content-Length itself
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes  # 0 turns the limit off

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.max_bytes:
            await problem_response(BodyTooLarge(self.max_bytes))(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)  # the app's handler answers 413
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await problem_response(exc)(scope, receive, send)
