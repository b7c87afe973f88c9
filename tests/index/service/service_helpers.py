"""Helpers of the index-service tests (a module of its own: every test folder has a `conftest`)."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

DIM = 8
TOKEN = "s3cret-token"


class LengthEmbedder:
    """A hand-computable embedder: a text's vector counts its words of length 1..7 and 8+, normalised."""

    def get_embedding_dimension(self):
        return DIM

    def encode(self, texts, **kw):
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, min(len(w), DIM) - 1] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def random_text(rng: np.random.Generator) -> str:
    return " ".join("x" * int(n) for n in rng.integers(1, 10, size=int(rng.integers(2, 12))))


def wait_ready(client, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.01)
    raise AssertionError("the service did not become ready")


class ServerThread:
    """uvicorn serving an app on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        import httpx

        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise AssertionError("uvicorn did not become ready")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
