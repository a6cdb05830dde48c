"""`mesh-node mcp` driven by the official Python MCP client, as an MCP
host would: it lists the tools, delegates a task across organisations and
gets the answer, lists peers with trust, proves the result record, and
reads a refusal's rule from a tool error."""

from __future__ import annotations

import asyncio
import json

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import BINARY, WAIT, Mesh, connected, eventually
from test_mesh import pair, serving


def test_an_mcp_client_delegates_through_the_mesh(mesh: Mesh) -> None:
    alice, bob = pair(mesh)
    stop, thread = serving(bob, lambda t: f"answered {t.input}")

    async def run() -> None:
        params = StdioServerParameters(
            command=str(BINARY), args=["mcp", "--config", str(alice.config)]
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {t.name for t in (await session.list_tools()).tools}
                assert {"delegate_task", "get_task", "cancel_task", "list_peers",
                        "explain_trust", "prove_record"} <= tools

                result = await session.call_tool(
                    "delegate_task",
                    {"resource": "search", "action": "read", "input": "via mcp", "wait_secs": 20},
                )
                assert not result.is_error, result
                task = json.loads(result.content[0].text)
                assert (task["state"], task["output"]) == ("succeeded", "answered via mcp")
                assert task["to"] == bob.did

                peers = json.loads((await session.call_tool("list_peers", {})).content[0].text)
                assert [p["did"] for p in peers["peers"]] == [bob.did]
                assert peers["peers"][0]["tier"]

                proof = await session.call_tool("prove_record", {"index": task["result_record"]})
                assert json.loads(proof.content[0].text)["verified"] is True

                # A refusal is a tool error the model can read: the rule.
                refused = await session.call_tool(
                    "delegate_task",
                    {"resource": "search", "action": "read", "to": bob.did, "min_trust": 990},
                )
                assert refused.is_error
                assert "trust_below_link_minimum" in refused.content[0].text

    try:
        asyncio.run(asyncio.wait_for(run(), WAIT * 2))
    finally:
        stop.set()
        thread.join(WAIT)
