"""An agent beside its mesh node: it serves `search` tasks delegated to it,
and delegates one of its own to the best candidate in the mesh.

    python examples/search_agent.py path/to/node.toml serve
    python examples/search_agent.py path/to/node.toml ask "rust sans-io"
"""

import sys

from iatp_mesh import Client, MeshError


def handle(task):
    # The agent's real work goes here (an LLM call, a tool run…).
    return f"3 results for {task.input!r}"


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    config, command = sys.argv[1], sys.argv[2]
    with Client.from_config(config) as mesh:
        if command == "serve":
            print(f"serving tasks for {mesh.agent()['did']} (Ctrl-C to stop)")
            try:
                mesh.serve(handle)
            except KeyboardInterrupt:
                return 0
        elif command == "ask":
            try:
                task = mesh.delegate("search", "read", " ".join(sys.argv[3:]))
                done = mesh.wait(task.id, timeout=120)
            except MeshError as e:
                print(f"refused: {e}")
                return 1
            print(f"{done.state} by {done.to}: {done.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
