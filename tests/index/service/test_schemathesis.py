"""Property-based checks of the served API against its own OpenAPI schema (schemathesis): no 5xx, every
status code, header and body as documented, invalid requests refused."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from service_helpers import TOKEN, ServerThread  # noqa: E402

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def api_schema(index_dir):
    from rag_jobs.index.service import create_app

    app = create_app(index_dir, token=TOKEN, max_batch=8, max_k=20, max_ids=16, max_body_bytes=64_000)
    with ServerThread(app) as server:
        yield schemathesis.openapi.from_url(server.url + "/openapi.json")


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_api_conforms_to_its_schema(api_schema, mode):
    # schemathesis' own pytest plugin does not load under pytest 9: drive hypothesis directly.
    operations = _operations(api_schema)
    assert {op.path for op in operations} >= {"/v1/search", "/v1/info", "/readyz", "/metrics"}
    generation_mode = schemathesis.GenerationMode(mode)
    for operation in operations:
        if mode == "negative" and operation.method.upper() == "GET":
            continue  # nothing to make invalid: no parameters, no body

        @given(case=operation.as_strategy(generation_mode=generation_mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):
            case.call_and_validate(headers=AUTH, timeout=10)

        check()
