"""Body size, in-flight limit and request metrics: one pure ASGI middleware (`GuardMiddleware`)."""

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rag_jobs.index.service.constants import _ENDPOINTS, RETRY_AFTER_OVERLOADED_S
from rag_jobs.index.service.metrics import ServiceMetrics

# ---------------------------------------------------------------------------------------------------
# Body size, in-flight limit and request metrics: one pure ASGI middleware
# ---------------------------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _send_json(send: Send, status: int, body: dict, headers: "dict[str, str] | None" = None) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class GuardMiddleware:
    """Refuses bodies over `max_body_bytes` (413) and /v1 requests over `max_in_flight` (503), and
    records every request's endpoint, status and latency. The body is read here (bounded) and replayed
    to the app, so a chunked body without Content-Length is limited too."""

    def __init__(self, app: Callable, *, max_body_bytes: int, max_in_flight: int, metrics: ServiceMetrics):
        self.app, self.max_body_bytes, self.max_in_flight, self.metrics = app, max_body_bytes, max_in_flight, metrics
        self.in_flight = 0  # touched only on the event loop's thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in _ENDPOINTS else "other"
        status = 500
        t0 = time.perf_counter()

        async def send_recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        guarded = path.startswith("/v1/")
        if guarded and self.in_flight >= self.max_in_flight:
            detail = f"too many requests in flight (limit {self.max_in_flight})"
            await _send_json(send_recorded, 503, {"detail": detail}, {"Retry-After": str(RETRY_AFTER_OVERLOADED_S)})
            self.metrics.observe(endpoint, scope.get("method", ""), status, time.perf_counter() - t0)
            return
        if guarded:
            self.in_flight += 1
            self.metrics.in_flight.inc()
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                await _send_json(send_recorded, 413, {"detail": f"request body over {self.max_body_bytes} bytes"},
                                 {"Connection": "close"})
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_recorded)
        finally:
            if guarded:
                self.in_flight -= 1
                self.metrics.in_flight.dec()
            self.metrics.observe(endpoint, scope.get("method", ""), status, time.perf_counter() - t0)

    async def _read_body(self, scope: Scope, receive: Receive) -> "bytes | None":
        """The whole body, or None when it is (or says it is) over the limit."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        return None
                except ValueError:
                    pass
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

