"""Schemathesis fuzzing of the edge from its own OpenAPI document (issue #14): valid and
schema-violating requests against a real edge (uvicorn, production limits) and the fake
router. Bounded and deterministic: a fixed number of examples per operation, derandomized.

Checks: schemathesis' defaults (no 5xx, status codes, content types and bodies as
documented), every 4xx an OpenAI error object, and no exception or dropped connection
(`case.call` raises on those)."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mesh.edge.openapi import DOCUMENT_PATH
from tests.mesh.edge.conftest import serve_edge
from tests.mesh.edge.fakes import fake_router

pytestmark = pytest.mark.timeout(300)

SCHEMA = schemathesis.openapi.from_dict(json.loads(DOCUMENT_PATH.read_text()))
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# Negative cases need something to break: a body or a parameter.
RUNS = [
    *(
        (path, "POST", mode)
        for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
        for mode in (POSITIVE, NEGATIVE)
    ),
    ("/v1/models/{model_id}", "GET", POSITIVE),
    ("/v1/models/{model_id}", "GET", NEGATIVE),
    ("/v1/models", "GET", POSITIVE),
    ("/health", "GET", POSITIVE),
]
MAX_EXAMPLES = 60
AUTH = {"Authorization": "Bearer sk-test"}


def openai_error_object(ctx, response, case) -> None:
    """Every 4xx is `{"error": {"message", "type", "param", "code"}}`."""
    if 400 <= response.status_code < 500:
        error = json.loads(response.content)["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert isinstance(error["message"], str) and error["message"]


# Refusals of rules across fields, which a JSON schema cannot state (see the document's 4XX).
BEYOND_THE_SCHEMA = {"invalid_parameter_combination", "invalid_json_schema"}


def positive_data_accepted(ctx, response, case):
    """Schemathesis' check that schema-valid data is accepted, except the refusals the
    document says it cannot express."""
    if response.status_code == 400:
        error = json.loads(response.content).get("error") or {}
        if error.get("code") in BEYOND_THE_SCHEMA:
            return None
    return positive_data_acceptance(ctx, response, case)


@pytest.fixture(scope="module")
def edge_url():
    with fake_router() as router, serve_edge(router) as base:
        yield base


@pytest.mark.parametrize(("path", "method", "mode"), RUNS)
def test_fuzz_the_edge_from_its_openapi_document(edge_url, path, method, mode):
    strategy = SCHEMA[path][method].as_strategy(generation_mode=mode)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:
        response = case.call(base_url=edge_url, headers=AUTH, timeout=30)
        case.validate_response(
            response,
            additional_checks=[openai_error_object, positive_data_accepted],
            excluded_checks=[positive_data_acceptance],
        )

    fuzz()
