"""The one moto S3 server of the tests and the reliability benchmark: on 127.0.0.1 at a free port, with its
conditional PUT made atomic, as S3's is."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def atomic_conditional_puts_in_moto() -> Iterator[None]:
    """moto (5.x) checks If-None-Match and stores the object in two separate steps, without a lock,
    so two concurrent conditional PUTs can both succeed there; S3 makes that check atomic. This
    serialises moto's conditional PutObject handling (in this process) while the block runs."""
    from moto.s3.responses import S3Response

    original = S3Response.put_object
    lock = threading.Lock()

    def put_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.headers.get("If-None-Match") or self.headers.get("If-Match"):
            with lock:
                return original(self, *args, **kwargs)
        return original(self, *args, **kwargs)

    S3Response.put_object = put_object  # type: ignore[method-assign]
    try:
        yield
    finally:
        S3Response.put_object = original  # type: ignore[method-assign]


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A running moto S3 server; yields its endpoint URL and stops it at the end."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with atomic_conditional_puts_in_moto():
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()
