"""Timings of the Python side, for docs/PERFORMANCE.md (not part of the
test run): two real daemons (acme, globex) on one machine, a Python agent
serving no-op tasks at globex.

- the SDK's full round trip for a no-op task: `delegate` + `wait` from
  Python at acme until the Python agent at globex answered it;
  (paced under the peers' request rate limit, 50/s);
- an MCP tool call's overhead: `list_peers` through `mesh-node mcp` (the
  official Python MCP client, stdio) against the same `GET /v1/peers`
  through the SDK.

    target/python-venv/bin/python sdk/python/bench/roundtrip.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from conftest import BINARY, Mesh, connected, eventually  # noqa: E402


def ms(samples):
    s = sorted(samples)
    return (statistics.median(s) * 1e3, s[int(len(s) * 0.99) - 1] * 1e3)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as root:
        mesh = Mesh(Path(root))
        try:
            alice = mesh.start("alice", "acme")
            bob = mesh.start("bob", "globex", serves=True, capabilities=["search"],
                             bootstrap=alice)
            eventually("connected", lambda: connected(alice, bob))
            stop = threading.Event()
            server = threading.Thread(target=bob.client.serve, args=(lambda t: "",),
                                      kwargs={"stop": stop.is_set}, daemon=True)
            server.start()
            trips = []
            for _ in range(rounds):
                t = time.perf_counter()
                task = alice.client.delegate("search", "read", "", to=bob.did, wait_secs=10)
                if not task.finished:
                    task = alice.client.wait(task.id, timeout=30)
                trips.append(time.perf_counter() - t)
                assert task.state == "succeeded", task
                # Under the peer's request rate (50/s sustained): pace, untimed.
                time.sleep(max(0.0, 0.025 - trips[-1]))
            stop.set()
            server.join(10)
            p50, p99 = ms(trips)
            print(f"SDK no-op task round trip: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({rounds} tasks)")

            async def mcp_vs_direct():
                params = StdioServerParameters(command=str(BINARY),
                                               args=["mcp", "--config", str(alice.config)])
                async with stdio_client(params) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        via_mcp, direct = [], []
                        for _ in range(rounds):
                            t = time.perf_counter()
                            await session.call_tool("list_peers", {})
                            via_mcp.append(time.perf_counter() - t)
                            t = time.perf_counter()
                            alice.client.peers()
                            direct.append(time.perf_counter() - t)
                        return via_mcp, direct

            via_mcp, direct = asyncio.run(mcp_vs_direct())
            (m50, m99), (d50, d99) = ms(via_mcp), ms(direct)
            print(f"list_peers via MCP: p50 {m50:.2f} ms, p99 {m99:.2f} ms; "
                  f"via the SDK: p50 {d50:.2f} ms, p99 {d99:.2f} ms; "
                  f"MCP overhead p50 {m50 - d50:.2f} ms")
        finally:
            mesh.stop()


if __name__ == "__main__":
    main()
