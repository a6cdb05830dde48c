"""The SDK against real daemons of two organisations and an outsider."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import WAIT, Mesh, connected, eventually
from iatp_mesh import (
    AsyncClient,
    ConfigError,
    Denied,
    InvalidInput,
    NotFound,
    Refused,
)


def pair(mesh: Mesh):
    alice = mesh.start("alice", "acme")
    bob = mesh.start("bob", "globex", serves=True, capabilities=["search"], bootstrap=alice)
    eventually("bob connected to alice", lambda: connected(alice, bob))
    return alice, bob


def serving(daemon, handler, **kwargs):
    """Serve `daemon`'s inbox on a thread until the returned event is set."""
    stop = threading.Event()
    thread = threading.Thread(
        target=daemon.client.serve, args=(handler,), kwargs={"stop": stop.is_set, **kwargs},
        daemon=True,
    )
    thread.start()
    return stop, thread


def test_a_cross_org_delegation_round_trip(mesh: Mesh) -> None:
    alice, bob = pair(mesh)
    stop, thread = serving(bob, lambda t: f"found {t.input} for {t.sender[:12]}")
    try:
        task = alice.client.delegate("search", "read", "rust sans-io")  # the best candidate
        assert (task.to, task.state) == (bob.did, "running")
        done = alice.client.wait(task.id, timeout=WAIT)
        assert done.state == "succeeded", done
        assert done.output == f"found rust sans-io for {alice.did[:12]}"
        # The answer is a co-signed record in alice's log, provable.
        assert alice.client.proof(done.result_record)["verified"] is True
        assert any(t.id == task.id for t in alice.client.tasks())
        # Bob gained trust in alice's eyes from the success.
        evidence = alice.client.trust(bob.did)["evidence"]
        assert any(e["kind"] == "task_success" for e in evidence)
    finally:
        stop.set()
        thread.join(WAIT)


def test_the_async_client_delegates_and_serves(mesh: Mesh) -> None:
    alice, bob = pair(mesh)

    async def run() -> None:
        async with AsyncClient.from_config(alice.config) as a, \
                AsyncClient.from_config(bob.config) as b:
            stop = asyncio.Event()

            async def handler(task):
                await asyncio.sleep(0.1)
                return task.input.upper()

            server = asyncio.create_task(b.serve(handler, stop=stop))
            task = await a.delegate("search", "read", "shout", to=bob.did)
            done = await a.wait(task.id, timeout=WAIT)
            stop.set()
            await asyncio.wait_for(server, WAIT)
            assert (done.state, done.output) == ("succeeded", "SHOUT")

    asyncio.run(run())


def test_a_task_outlives_the_old_ten_second_limit(mesh: Mesh) -> None:
    alice, bob = pair(mesh)

    def slow(task):
        time.sleep(12)  # the request timeout used to cap a task at 10 s
        return "slow but done"

    stop, thread = serving(bob, slow, lease_secs=3)  # renewed while it runs
    try:
        task = alice.client.delegate("search", "read", "x", to=bob.did)
        done = alice.client.wait(task.id, timeout=WAIT)
        assert (done.state, done.output) == ("succeeded", "slow but done"), done
    finally:
        stop.set()
        thread.join(WAIT)


def test_the_trust_gate_refuses_below_the_minimum(mesh: Mesh) -> None:
    alice, bob = pair(mesh)
    with pytest.raises(Denied) as e:
        alice.client.delegate("search", "read", "x", to=bob.did, min_trust=990)
    assert e.value.rule == "trust_below_link_minimum"
    assert alice.client.tasks() == []


def test_a_revocation_is_recorded_with_the_audience(mesh: Mesh) -> None:
    alice, bob = pair(mesh)
    grant = alice.client.grant(bob.did, ["search:read"], lifetime_secs=600)
    revoked = alice.client.revoke(grant["grant"], reason="no longer needed")
    assert revoked["record"] is not None  # bob countersigned the revoke record
    with pytest.raises(NotFound):
        alice.client.revoke("00" * 32)


def test_an_agent_without_a_handler_refuses_tasks(mesh: Mesh) -> None:
    alice = mesh.start("alice", "acme")
    idle = mesh.start("idle", "acme", capabilities=["search"], bootstrap=alice)
    eventually("idle connected", lambda: connected(alice, idle))
    with pytest.raises(Refused) as e:
        alice.client.delegate("search", "read", "x", to=idle.did)
    assert (e.value.rule, e.value.refusal_code) == ("no_handler", 21)


def test_a_crashed_handlers_lease_runs_out(mesh: Mesh) -> None:
    alice, bob = pair(mesh)
    task = alice.client.delegate("search", "read", "x", to=bob.did)
    # Bob's agent process takes the task and dies without answering.
    crash = (
        "import os, sys\n"
        "from iatp_mesh import Client\n"
        f"c = Client.from_config({str(bob.config)!r})\n"
        "t = c.next_task(wait_secs=10, lease_secs=2)\n"
        "sys.stdout.write(t.id if t else '')\n"
        "sys.stdout.flush()\n"
        "os._exit(1)\n"
    )
    out = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True,
                         timeout=WAIT)
    assert out.stdout == task.id, out.stderr
    done = alice.client.wait(task.id, timeout=WAIT)
    assert done.state == "failed", done
    assert "lease" in (done.output or "")


def test_an_outsider_is_never_a_peer(mesh: Mesh) -> None:
    alice = mesh.start("alice", "acme")
    mallory = mesh.start("mallory", "rogue", serves=True, capabilities=["search"],
                         bootstrap=alice)
    time.sleep(2)
    assert all(p.did != mallory.did for p in alice.client.peers())
    # An agent alice never met stands below the gate's minimum…
    with pytest.raises(Denied) as denied:
        alice.client.delegate("search", "read", "x", to=mallory.did)
    assert denied.value.rule == "trust_below_link_minimum"
    # …and without a minimum, its organisation is still no one alice knows.
    with pytest.raises(Denied) as unknown:
        alice.client.delegate("search", "read", "x", to=mallory.did, min_trust=0)
    assert unknown.value.rule == "unknown_org"


def test_bad_input_names_the_field_and_the_token_file_must_be_private(mesh: Mesh) -> None:
    alice = mesh.start("alice", "acme")
    with pytest.raises(InvalidInput) as e:
        alice.client.delegate("search", "read", "x", to="did:web:example.com")
    assert e.value.field == "to"
    with pytest.raises(InvalidInput) as e:
        alice.client.delegate("search", "read", "x", deadline_secs=0)
    assert e.value.field == "deadline_secs"
    token = alice.config.parent / "data" / "api-token"
    os.chmod(token, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        AsyncClient.from_config(alice.config)
