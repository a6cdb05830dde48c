"""The Agent Governance Toolkit's Python side of the comparison (5.0.0).

Run by compare.py inside the throwaway venv it makes; speaks the line
protocol of README.md: one JSON line naming what each operation checks,
then one JSON line of timed samples (microseconds) per `OP N` request.
Only the published package is used, through its documented classes.
"""

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from agentmesh.governance.audit import AuditLog
from agentmesh.governance.audit_backends import FileAuditSink
from agentmesh.identity.agent_id import AgentIdentity, IdentityRegistry
from agentmesh.identity.delegation import DelegationLink, ScopeChain
from agentmesh.trust.handshake import TrustHandshake
from agentmesh.trust_types import TrustTracker

CHECKS = {
    "handshake": "TrustHandshake.initiate in both directions (use_cache=False): "
    "challenge id and expiry, responder DID = expected DID, registry "
    "membership/active/trusted, one Ed25519 verify of the responder's "
    "signature over the challenge, public key = registered key, registry "
    "trust score >= 500; per direction 1 sign + 1 verify. The responder's "
    "answer is produced in-process from the registry entry (no wire)",
    "append": "AuditLog.log with a FileAuditSink: the entry's SHA-256, the "
    "in-memory Merkle tree, one HMAC-signed JSON line appended to a file "
    "(open/write/close; no fsync: survives a crash of the process, not of "
    "the machine)",
    "verify_10k": "AuditLog.verify_integrity over 10,000 in-memory entries: "
    "each entry's SHA-256 recomputed and the previous-hash links; no "
    "signatures (entries are not signed)",
    "delegation_depth3": "ScopeChain.verify of a sponsor link plus 3 "
    "agent-signed links: depth order, previous-link hashes, capability "
    "narrowing, each link's SHA-256 over canonical JSON, 3 Ed25519 verifies "
    "(best effort: a link whose parent is not in known_identities is "
    "accepted unsigned); no expiry or revocation in verify",
    "trust_update_lookup": "TrustTracker.record_interaction (score += reward, "
    "clamped; a history record appended) and get_score",
}


class Sides:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.TemporaryDirectory()
        self._handshake = None
        self._audit = None
        self._chain = None
        self._trust = None

    def handshake(self):
        if self._handshake is None:
            reg = IdentityRegistry()
            alice = AgentIdentity.create("alice", "a@acme.example", ["tools:github"])
            bob = AgentIdentity.create("bob", "b@globex.example", ["search"])
            reg.register(alice)
            reg.register(bob)
            a = TrustHandshake(str(alice.did), identity=alice, registry=reg)
            b = TrustHandshake(str(bob.did), identity=bob, registry=reg)
            self._handshake = (a, b, str(alice.did), str(bob.did))
        a, b, alice, bob = self._handshake

        async def mutual():
            x = await a.initiate(bob, required_trust_score=500, use_cache=False)
            y = await b.initiate(alice, required_trust_score=500, use_cache=False)
            return x, y

        start = time.perf_counter_ns()
        x, y = self.loop.run_until_complete(mutual())
        took = time.perf_counter_ns() - start
        assert x.verified and y.verified, (x, y)
        return took

    def audit(self):
        if self._audit is None:
            sink = FileAuditSink(Path(self.dir.name) / "audit.jsonl", b"k" * 32)
            durable = AuditLog(sink=sink)
            big = AuditLog()
            for i in range(10_000):
                big.log("tool_invocation", "did:mesh:alice", f"read {i}", resource="repo")
            self._audit = (durable, big)
        return self._audit

    def append(self):
        durable, _ = self.audit()
        start = time.perf_counter_ns()
        durable.log("tool_invocation", "did:mesh:alice", "read", resource="repo")
        return time.perf_counter_ns() - start

    def verify_10k(self):
        _, big = self.audit()
        start = time.perf_counter_ns()
        ok, why = big.verify_integrity()
        took = time.perf_counter_ns() - start
        assert ok, why
        return took

    def delegation_depth3(self):
        if self._chain is None:
            ids = [
                AgentIdentity.create(n, "owner@acme.example", ["tools:*"])
                for n in ("owner", "alice", "bob", "carol")
            ]
            chain, root = ScopeChain.create_root(
                "owner@acme.example", str(ids[0].did), ["tools:*"]
            )
            chain.add_link(root)
            caps = [["tools:*"], ["tools:*"], ["tools:github"]]
            for k in range(3):
                parent, child = ids[k], ids[k + 1]
                link = DelegationLink(
                    link_id=f"link_{k}",
                    depth=k + 1,
                    parent_did=str(parent.did),
                    child_did=str(child.did),
                    parent_capabilities=chain.leaf_capabilities,
                    delegated_capabilities=caps[k],
                    parent_signature=parent.sign(
                        f"{parent.did}:{child.did}:{','.join(sorted(caps[k]))}".encode()
                    ),
                    link_hash="",
                    previous_link_hash=chain.links[-1].link_hash,
                )
                link.link_hash = link.compute_hash()
                chain.add_link(link)
                chain.known_identities[str(parent.did)] = parent
            self._chain = chain
        start = time.perf_counter_ns()
        ok, why = self._chain.verify()
        took = time.perf_counter_ns() - start
        assert ok, why
        return took

    def trust_update_lookup(self):
        if self._trust is None:
            self._trust = TrustTracker()
        t = self._trust
        start = time.perf_counter_ns()
        t.record_interaction("did:mesh:bob", "did:mesh:alice", "read", True)
        t.get_score("did:mesh:bob")
        return time.perf_counter_ns() - start


def main():
    print(json.dumps({"side": "AGT Python 5.0.0", "checks": CHECKS}), flush=True)
    sides = Sides()
    for line in sys.stdin:
        words = line.split()
        if len(words) != 2:
            continue
        op, n = words[0], int(words[1])
        run = getattr(sides, op, None) if op in CHECKS else None
        if run is None:
            print(json.dumps({"op": op, "error": "unknown operation"}), flush=True)
            continue
        samples = [run() / 1000.0 for _ in range(n)]
        print(json.dumps({"op": op, "samples_us": samples}), flush=True)


if __name__ == "__main__":
    main()
