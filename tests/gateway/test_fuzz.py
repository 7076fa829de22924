"""schemathesis against the live gateway (real HTTP, the real Triton), every check on.

Every operation of the OpenAPI document gets generated requests, valid and invalid; the
budget per operation is ``GANTRY_FUZZ_EXAMPLES`` (60 in `make test`, a few minutes in all).
Any 5xx, any response not in the document (status, content type, schema, headers) and any
invalid request that is accepted fails the test. A valid request may be refused for what
schemas cannot say (random bytes are not a decodable image: 415/422; an id that does not
exist: 404; a body over a limit: 413).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from gantry.core.settings import Settings
from tests.conftest import free_port, live_gateway

EXAMPLES = int(os.environ.get("GANTRY_FUZZ_EXAMPLES", "60"))
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "404", "409", "410", "413", "415", "422"]
            }
        }
    }
)


@pytest.fixture(scope="module")
def fuzz_schema(triton: object, triton_settings: Settings) -> Iterator[schemathesis.BaseSchema]:
    gateway = triton_settings.model_copy(
        update={"grpc_enabled": False, "gateway_port": free_port()}
    )
    with live_gateway(gateway) as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json", config=CONFIG)


def _unsendable(case: schemathesis.Case[Any]) -> bool:
    """A multipart field whose value is ``[]`` or ``null`` is left out of the body, so the
    request sent is a valid one: not the invalid request the case stands for."""
    body = case.body
    return (
        case.media_type == "multipart/form-data"
        and isinstance(body, dict)
        and any(value == [] or value is None for value in body.values())
    )


def test_every_operation_keeps_its_contract(fuzz_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]  # type: ignore[union-attr]
    assert "POST /v1/translate" in {operation.label for operation in operations}
    assert len(operations) >= 15
    cases = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode))
            def call(case: schemathesis.Case[Any]) -> None:
                nonlocal cases
                if _unsendable(case):
                    reject()
                cases += 1
                case.call_and_validate(timeout=60)

            try:
                call()
            except Unsatisfiable:
                # No request can violate a schema without parameters (GET /healthz).
                assert mode is GenerationMode.NEGATIVE, operation.label
    print(f"schemathesis: {cases} cases over {len(operations)} operations")
