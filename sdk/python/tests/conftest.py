"""Real daemons for the SDK's tests: organisations made with the
`mesh-node` CLI (org roots, agent keys, credentials, a trust bundle), each
agent a `mesh-node run` process with its agent API on a Unix socket.
Two organisations in the bundle (acme, globex) and an outsider (rogue)
that nobody accepts. The binary is $MESH_NODE, or the workspace's
target/debug/mesh-node (the test command builds it first)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from iatp_mesh import Client

REPO = Path(__file__).resolve().parents[3]
BINARY = Path(os.environ.get("MESH_NODE", REPO / "target" / "debug" / "mesh-node"))
#: Every wait in these tests is bounded by this.
WAIT = 30.0


def mesh_node(*args: str) -> str:
    out = subprocess.run(
        [str(BINARY), *args], capture_output=True, text=True, timeout=WAIT, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"mesh-node {' '.join(args)}: {out.stderr}")
    return out.stdout


def did_of_key(key: Path) -> str:
    for line in mesh_node("identity", "show", str(key)).splitlines():
        if line.startswith("did:") or line.startswith("did "):
            return line.split()[-1]
    raise RuntimeError(f"no DID for {key}")


class Daemon:
    """A running `mesh-node run`."""

    def __init__(self, name: str, config: Path, process: subprocess.Popen, addr: str,
                 did: str) -> None:
        self.name = name
        self.config = config
        self.process = process
        self.addr = addr
        self.did = did
        self.client = Client.from_config(config, timeout=WAIT * 3)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Mesh:
    """A federation on disk and its daemons."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.orgs: Dict[str, Path] = {}
        self.daemons: List[Daemon] = []
        for org in ("acme", "globex", "rogue"):
            key = root / f"{org}.key"
            mesh_node("org", "new", "--out", str(key))
            self.orgs[org] = key
        bundle = ""
        for org, initial in (("acme", 600), ("globex", 500)):
            bundle += (
                f'[[org]]\nname = "{org}"\nroot = "{did_of_key(self.orgs[org])}"\n'
                f"initial_trust = {initial}\ntrust_ceiling = 900\n"
                f'capabilities = ["search", "tools/*"]\n\n'
            )
        (root / "bundle.toml").write_text(bundle)

    def start(self, name: str, org: str, *, serves: bool = False,
              capabilities: Optional[List[str]] = None,
              bootstrap: Optional["Daemon"] = None, api: str = "unix:api.sock") -> Daemon:
        d = self.root / name
        d.mkdir()
        mesh_node("identity", "new", "--out", str(d / "agent.key"))
        did = did_of_key(d / "agent.key")
        mesh_node("org", "issue", "--org", str(self.orgs[org]), "--agent", did,
                  "--role", "worker", "--days", "1", "--out", str(d / "agent.cred"))
        caps = ", ".join(f'"{c}"' for c in (capabilities or []))
        boot = f'bootstrap = ["{bootstrap.addr}"]\n' if bootstrap else ""
        (d / "node.toml").write_text(
            f'identity = "agent.key"\ncredential = "agent.cred"\nname = "{name}"\n'
            f'capabilities = [{caps}]\ntrust_bundle = "../bundle.toml"\ndata_dir = "data"\n'
            f'listen = ["/ip4/127.0.0.1/tcp/0"]\n{boot}api = "{api}"\n'
            f"serve_tasks = {'true' if serves else 'false'}\n"
        )
        log = open(self.root / f"{name}.log", "w")
        process = subprocess.Popen(
            [str(BINARY), "run", "--config", str(d / "node.toml")],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
        lines: List[str] = []
        api_up = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.strip())
                if line.startswith("api-token "):
                    api_up.set()

        threading.Thread(target=read, daemon=True).start()
        if not api_up.wait(WAIT):
            process.kill()
            raise RuntimeError(f"{name} did not start: see {self.root / (name + '.log')}")
        addr = next(l.split()[1] for l in lines if l.startswith("listening "))
        addr = addr.split("/p2p/")[0]
        daemon = Daemon(name, d / "node.toml", process, addr, did)
        self.daemons.append(daemon)
        return daemon

    def stop(self) -> None:
        for d in self.daemons:
            d.stop()


def eventually(what: str, check, timeout: float = WAIT) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: build it with `cargo build -p mesh-node`")
    m = Mesh(tmp_path)
    try:
        yield m
    finally:
        m.stop()


def connected(a: Daemon, b: Daemon) -> bool:
    return any(p.did == b.did for p in a.client.peers())
