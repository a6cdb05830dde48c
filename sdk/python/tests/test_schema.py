"""Schemathesis against a live node's agent API: requests generated from
docs/agent-openapi.json (valid ones, and ones that break the schema), each
answer checked against the schema — no server error, a documented status,
a body of the documented shape, valid requests accepted and invalid ones
refused. Custom formats give the generator real DIDs and capabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from conftest import REPO, Mesh, connected, eventually

SPEC = REPO / "docs" / "agent-openapi.json"
PORT = 7861

SEGMENT = r"[a-z0-9._-]{1,8}"
ACTION = r"[a-z0-9_-]{1,8}"
# did:keys that decode (Ed25519 points); the node knows none of them.
DIDS = [
    "did:key:z6MkrBQVXjzsbKd8rj5s9DBPDpG1qEuwA9WP5fctWXWnDmvw",
    "did:key:z6MkiyiyJmXbQHX9mFzAf3o6SegkHfmtvgJuCFAaS2yUqqDC",
]

schemathesis.openapi.format("did-key", st.sampled_from(DIDS))
schemathesis.openapi.format("resource", st.from_regex(rf"\A{SEGMENT}(/{SEGMENT}){{0,2}}\Z"))
schemathesis.openapi.format("action", st.from_regex(rf"\A{ACTION}\Z"))
# The API bounds text in bytes (16 KiB of UTF-8); JSON Schema counts
# characters, so valid text is generated as ASCII.
schemathesis.openapi.format(
    "text-16k", st.text(alphabet=st.characters(max_codepoint=127), max_size=16384)
)
schemathesis.openapi.format(
    "capability", st.from_regex(rf"\A{SEGMENT}(/{SEGMENT}){{0,2}}(/\*)?:({ACTION}|\*)\Z")
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    mesh = Mesh(tmp_path_factory.mktemp("schema"))
    try:
        alice = mesh.start("alice", "acme", serves=True, capabilities=["search"],
                           api=f"127.0.0.1:{PORT}")
        bob = mesh.start("bob", "globex", serves=True, capabilities=["search"], bootstrap=alice)
        eventually("connected", lambda: connected(alice, bob))
        token = (alice.config.parent / "data" / "api-token").read_text().strip()
        yield f"http://127.0.0.1:{PORT}", token
    finally:
        mesh.stop()


def _bounded(container, key: str) -> None:
    """Keep a valid long-poll short (the API allows 60 s)."""
    if isinstance(container, dict) and isinstance(container.get(key), int) \
            and not isinstance(container.get(key), bool) and 0 <= container[key] <= 60:
        container[key] = min(container[key], 1)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_the_api_holds_to_its_schema(served, mode) -> None:
    url, token = served
    schema = schemathesis.openapi.from_path(SPEC)
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None, phases=[Phase.explicit, Phase.generate])
        def check(case) -> None:
            _bounded(case.body, "wait_secs")
            _bounded(case.query, "wait_secs")
            if case.path == "/v1/inbox/next" and isinstance(case.body, dict) \
                    and case.body.get("wait_secs") is None:
                case.body["wait_secs"] = 0
            case.call_and_validate(base_url=url, headers={"Authorization": f"Bearer {token}"})

        try:
            check()
        except Unsatisfiable:
            # Nothing in this operation can break the schema (no body,
            # no parameter): no negative case to send.
            assert mode == schemathesis.GenerationMode.NEGATIVE
