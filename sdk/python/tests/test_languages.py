"""A Python agent and a Rust agent in different organisations, each beside
its own `mesh-node run`, delegate to each other through the agent API, the
CLI and MCP (issue 15's "done when")."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import BINARY, REPO, WAIT, Mesh, connected, eventually
from test_mesh import serving

RUST_AGENT = Path(
    os.environ.get("MESH_API_AGENT", REPO / "target" / "debug" / "examples" / "api_agent")
)


def test_a_python_and_a_rust_agent_delegate_to_each_other(mesh: Mesh) -> None:
    python = mesh.start("py", "acme", serves=True, capabilities=["search"])
    rust = mesh.start("rs", "globex", serves=True, capabilities=["search"], bootstrap=python)
    eventually("connected", lambda: connected(python, rust))
    stop, thread = serving(python, lambda t: f"python agent: {t.input[::-1]}")
    rust_agent = subprocess.Popen(
        [str(RUST_AGENT), str(rust.config), "serve"],
        stdout=subprocess.DEVNULL, stderr=open(mesh.root / "rust-agent.log", "w"),
    )
    try:
        # Python → Rust, through the SDK.
        task = python.client.delegate("search", "read", "sans io core", to=rust.did)
        done = python.client.wait(task.id, timeout=WAIT)
        assert done.output == 'rust agent: 3 words in "sans io core"', done

        # Rust → Python, through the Rust agent's own code on the API.
        asked = subprocess.run(
            [str(RUST_AGENT), str(rust.config), "ask", "mesh", python.did],
            capture_output=True, text=True, timeout=WAIT,
        )
        assert asked.stdout.strip() == f"succeeded by {python.did}: python agent: hsem", asked

        # Rust's side through the CLI.
        cli = subprocess.run(
            [str(BINARY), "task", "send", "--config", str(rust.config), "--to", python.did,
             "--resource", "search", "--action", "read", "--input", "cli", "--wait", "20",
             "--json"],
            capture_output=True, text=True, timeout=WAIT,
        )
        assert json.loads(cli.stdout)["output"] == "python agent: ilc", cli.stderr

        # And through MCP, from the Rust agent's node to the Python agent.
        async def via_mcp() -> str:
            params = StdioServerParameters(
                command=str(BINARY), args=["mcp", "--config", str(rust.config)]
            )
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    result = await session.call_tool(
                        "delegate_task",
                        {"resource": "search", "action": "read", "input": "mcp",
                         "to": python.did, "wait_secs": 20},
                    )
                    return json.loads(result.content[0].text)["output"]

        assert asyncio.run(asyncio.wait_for(via_mcp(), WAIT)) == "python agent: pcm"
    finally:
        rust_agent.terminate()
        rust_agent.wait(WAIT)
        stop.set()
        thread.join(WAIT)
