"""API fuzzing with schemathesis against the OpenAPI schema, as each role (slow: scripts/test -m slow).

Every operation gets generated requests (valid and edge-case bodies, paths and query strings)
on a live gunicorn server holding images in every status: zero 5xx, and every documented
response must match the schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.live import LiveServer
from tests.test_reliability import SEED

pytestmark = pytest.mark.slow

EXAMPLES = 15
ROLES = ("alice", "r0", "carol")


@pytest.fixture(scope="module")
def server():
    live = LiveServer("fuzz", workers=2, threads=4)
    live.create()
    data = live.seed("N_DRAFTS, N_SUBMITTED, N_APPROVED = 2, 2, 2\n" + SEED)
    live.start()
    yield live, data
    live.kill()
    live.drop()


def operations(server: LiveServer, token: str):
    schema = schemathesis.openapi.from_url(
        f"http://127.0.0.1:{server.port}/api/schema/?format=json", headers={"Authorization": f"Token {token}"}
    )
    for result in schema.get_all_operations():
        yield result.ok()


@pytest.mark.parametrize("role", ROLES)
def test_no_server_error_and_responses_match_the_schema(server, role):
    live, data = server
    token = data["tokens"][role]
    headers = {"Authorization": f"Token {token}"}
    base_url = f"http://127.0.0.1:{live.port}"
    seen = 0
    for operation in operations(live, token):
        if operation.path in ("/api/token/",):
            continue  # throttled by design; covered by its own tests

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call(base_url=base_url, headers=headers)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
            )

        run()
        seen += 1
    assert seen >= 20, "the schema lists the API's operations"
