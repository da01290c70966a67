"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis): no 5xx, no schema violation.

Every operation is called with generated paths, queries and bodies, with Alice's token, on a server that already
holds one of her dialogues (so its id, and R1, exist for the cases that guess them).  Schemathesis's default
checks run on every response: not a server error, status code documented, content type documented, the body
conforms to the documented schema, headers documented, schema-violating requests rejected, undocumented methods
answered 405.  One check is left out, ``positive_data_acceptance`` (a schema-valid request must not get a 4xx): the
API validates meaning beyond the schema by design (an upload must decode as an image, a crop box must not be
inverted, a cited region must exist), and says so with a 4xx problem body.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from server_helpers import ALICE, Made, auth, png_data_url

_made = Made(Path(__import__("tempfile").mkdtemp(prefix="rr-fuzz-")))
_client = TestClient(_made.app)  # no `with`: leaving it would run the app's shutdown (and /readyz would say 503)
if True:  # one dialogue with a turn, so guessed ids and R1 can hit something real
    _id = _client.post("/v1/dialogues", json={"image": png_data_url(), "id": "d1"}, headers=auth(ALICE)).json()["id"]
    _client.post(f"/v1/dialogues/{_id}/turns", json={"question": "right of bbox=[1, 1, 9, 9]"}, headers=auth(ALICE))

schema = schemathesis.openapi.from_asgi("/openapi.json", _made.app)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=auth(ALICE), excluded_checks=[positive_data_acceptance])
