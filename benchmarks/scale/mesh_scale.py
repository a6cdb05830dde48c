#!/usr/bin/env python3
"""A hundred real nodes on one machine: start N separate `mesh-node run`
processes on loopback, let them find each other through one bootstrap node
and the DHT, run delegations and trust gossip, and report what it cost.

Measures (README.md beside this file says how and why):
  - time to full authentication: from the first process's start until every
    node holds min(8, N-1) authenticated sessions (8, half the discovery
    target, is where a node stops looking for more), and until every node
    holds at least one;
  - idle CPU per node (% of one core) and RSS per node, from /proc;
  - delegated tasks: K nodes serve their inbox, every other node delegates;
  - a trust report's spread: from the publisher's `report_published`
    activity to each other node's `trust_report` activity, all read from
    the dashboards' event streams by this one process (one clock);
  - what the machine had left: memory, load, file descriptors, threads.

Standard library only. Not part of the test suite: it takes minutes and
most of the machine.

    python3 benchmarks/scale/mesh_scale.py --nodes 100
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A node stops looking for peers (DHT walks, prompt bootstrap redials) at
# half its discovery target (agent/src/limits.rs: Limits::discovery_target,
# 16; mesh-node/src/node/driver/mod.rs: needs_peers).
SETTLED = 8
# A mesh is quiet once no node made or trimmed a session for this long
# (longer than the 30 s a session is safe from trimming).
QUIET = 35
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def free_port_block(count):
    """A base port such that base..base+count are free on loopback."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        sockets = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise SystemExit("no block of free loopback ports found")


def run(binary, *args, cwd):
    out = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"mesh-node {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


class Node:
    def __init__(self, index, home, p2p, http, api, serve):
        self.index = index
        self.home = home
        self.p2p, self.http, self.api = p2p, http, api
        self.serve = serve
        self.proc = None
        self.did = None
        self.token = None

    def request(self, method, path, body=None, port=None, token=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.http, timeout=timeout)
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, (json.loads(data) if data else None)
        finally:
            conn.close()

    def api_call(self, method, path, body=None, timeout=60):
        return self.request(method, path, body, port=self.api, token=self.token, timeout=timeout)

    def proc_stat(self):
        """(cpu seconds, rss KiB, fds, threads) from /proc."""
        pid = self.proc.pid
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        rss = threads = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return cpu, rss, fds, threads


def make_mesh(binary, work, n, servers, max_sessions=None):
    acme = run(binary, "org", "new", "--out", "acme.key", cwd=work)
    globex = run(binary, "org", "new", "--out", "globex.key", cwd=work)
    with open(work / "bundle.toml", "w") as f:
        for name, root, initial in (("acme", acme, 600), ("globex", globex, 500)):
            f.write(
                f'[[org]]\nname = "{name}"\nroot = "{root}"\ninitial_trust = {initial}\n'
                f'trust_ceiling = 900\ncapabilities = ["search"]\n\n'
            )
    base = free_port_block(3 * n)
    nodes = []
    for i in range(n):
        home = work / f"n{i}"
        home.mkdir()
        did = run(binary, "identity", "new", "--out", str(home / "agent.key"), cwd=work)
        org = "acme" if i % 2 == 0 else "globex"
        run(binary, "org", "issue", "--org", f"{org}.key", "--agent", did,
            "--role", "worker", "--days", "30", "--out", str(home / "agent.cred"), cwd=work)
        node = Node(i, home, base + 3 * i, base + 3 * i + 1, base + 3 * i + 2, i < servers)
        node.did = did
        bootstrap = "" if i == 0 else f'"/ip4/127.0.0.1/tcp/{nodes[0].p2p}"'
        (home / "node.toml").write_text(
            f'identity = "agent.key"\ncredential = "agent.cred"\nname = "n{i}"\n'
            f'capabilities = ["search"]\ntrust_bundle = "../bundle.toml"\ndata_dir = "data"\n'
            f'listen = ["/ip4/127.0.0.1/tcp/{node.p2p}"]\nbootstrap = [{bootstrap}]\n'
            f'http = "127.0.0.1:{node.http}"\napi = "127.0.0.1:{node.api}"\n'
            f'serve_tasks = {"true" if node.serve else "false"}\n'
            + (f"max_sessions = {max_sessions}\n" if max_sessions else "")
        )
        nodes.append(node)
    return nodes


def start(binary, node):
    out = open(node.home / "stdout", "w")
    err = open(node.home / "stderr", "w")
    env = dict(os.environ, NO_COLOR="1", RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    node.proc = subprocess.Popen(
        [binary, "run", "--config", str(node.home / "node.toml")],
        stdout=out, stderr=err, env=env, start_new_session=True,
    )


def wait_ready(node, deadline):
    """Until the node printed its API line (it is serving)."""
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise SystemExit(f"node {node.index} exited: {(node.home / 'stderr').read_text()[-2000:]}")
        text = (node.home / "stdout").read_text()
        if "\napi " in "\n" + text:
            node.token = (node.home / "data" / "api-token").read_text().strip()
            return
        time.sleep(0.05)
    raise SystemExit(f"node {node.index} did not start in time")


def peers_of(node):
    try:
        status, body = node.request("GET", "/api/v1/node", timeout=10)
        return body["peers"] if status == 200 else -1
    except (OSError, ValueError, KeyError, http.client.HTTPException):
        return -1


def metric(node, prefix):
    """The sum of the node's /metrics samples whose line starts with
    `prefix` (0 if it does not answer)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", node.http, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        return 0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix))


CHURN = ('mesh_handshakes_total{outcome="established"', "mesh_sessions_trimmed_total")


def churn(nodes):
    return [sum(metric(n, p) for n in nodes) for p in CHURN]


class Events:
    """Every node's dashboard event stream, stamped on arrival."""

    def __init__(self, nodes):
        # (arrival here, node index, type, reporter, sequence, node's Unix ms)
        self.items = []
        self.lock = threading.Lock()
        self.stop = False
        for node in nodes:
            threading.Thread(target=self.follow, args=(node,), daemon=True).start()

    def follow(self, node):
        while not self.stop:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", node.http, timeout=60)
                conn.request("GET", "/api/v1/events")
                resp = conn.getresponse()
                kind = None
                while not self.stop:
                    line = resp.readline()
                    if not line:
                        break
                    line = line.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "activity":
                        now = time.monotonic()
                        item = json.loads(line[6:])
                        if item.get("type") in ("trust_report", "report_published"):
                            with self.lock:
                                self.items.append((now, node.index, item["type"],
                                                   item.get("reporter"), item.get("sequence"),
                                                   item.get("at_ms")))
            except (OSError, ValueError, http.client.HTTPException):
                time.sleep(0.5)


def spread(events, nodes, since, until):
    """Delays from each publication to each other node's acceptance of the
    same report (reporter and sequence), timed by the nodes' own clocks
    (one host, one clock): this process may read a stream late under
    load, which must not count as gossip's delay."""
    by_did = {n.did: n.index for n in nodes}
    with events.lock:
        items = [e for e in events.items if e[0] >= since]
    published = {(i, seq): at for t, i, kind, _, seq, at in items
                 if kind == "report_published" and t < until}
    heard = {}
    for _, receiver, kind, reporter, seq, at in items:
        if kind == "trust_report" and reporter in by_did:
            key = (by_did[reporter], seq)
            if key in published:
                heard.setdefault(key, {}).setdefault(receiver, (at - published[key]) / 1000)
    delays, reach, complete = [], [], []
    for key in published:
        first = heard.get(key, {})
        if not first:
            continue
        delays.extend(first.values())
        reach.append(len(first))
        if len(first) == len(nodes) - 1:
            complete.append(max(first.values()))
    return delays, reach, complete


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, round((len(v) - 1) * p))]


def serve_inbox(node, stop):
    while not stop.is_set():
        try:
            status, task = node.api_call("POST", "/v1/inbox/next", {"wait_secs": 2, "lease_secs": 60})
            if status == 200 and task:
                node.api_call("POST", f"/v1/inbox/{task['id']}/result",
                              {"success": True, "output": "done"})
        except (OSError, ValueError, http.client.HTTPException):
            time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--servers", type=int, default=10, help="nodes serving delegated tasks")
    ap.add_argument("--tasks", type=int, default=2, help="tasks each other node delegates")
    ap.add_argument("--idle-secs", type=float, default=30)
    ap.add_argument("--settle-secs", type=float, default=180,
                    help="how long to wait for the mesh to stop making and trimming sessions")
    ap.add_argument("--auth-timeout", type=float, default=300)
    ap.add_argument("--gossip-secs", type=float, default=40,
                    help="how long to watch trust reports spread after the tasks")
    ap.add_argument("--max-sessions", type=int,
                    help="each node's max_sessions (node.toml; default: the node's own, 64)")
    ap.add_argument("--binary", default=os.environ.get("MESH_NODE"))
    ap.add_argument("--keep", action="store_true", help="keep the nodes' directory")
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--events", help="write every report event read (JSON lines) here")
    args = ap.parse_args()
    if args.nodes < 2 or args.servers < 1 or args.servers >= args.nodes:
        raise SystemExit("need --nodes >= 2 and 1 <= --servers < --nodes")

    binary = args.binary
    if not binary:
        log("building mesh-node (release; the first build takes several minutes)")
        subprocess.run(["cargo", "build", "--release", "-p", "mesh-node", "--bin", "mesh-node"],
                       cwd=ROOT, check=True)
        binary = str(ROOT / "target" / "release" / "mesh-node")
    binary = str(Path(binary).resolve())

    work = Path(tempfile.mkdtemp(prefix="mesh-scale-"))
    nodes = []
    figures = {"nodes": args.nodes, "max_sessions": args.max_sessions}
    try:
        log(f"preparing {args.nodes} agents in {work}")
        nodes = make_mesh(binary, work, args.nodes, args.servers, args.max_sessions)
        target = min(SETTLED, args.nodes - 1)

        t0 = time.monotonic()
        start(binary, nodes[0])
        wait_ready(nodes[0], t0 + 60)
        for node in nodes[1:]:
            start(binary, node)
        for node in nodes[1:]:
            wait_ready(node, time.monotonic() + 120)
        figures["all_started_secs"] = round(time.monotonic() - t0, 2)
        log(f"all {args.nodes} processes serving after {figures['all_started_secs']} s")
        events = Events(nodes)

        one_peer = full = None
        counts = []
        while time.monotonic() - t0 < args.auth_timeout:
            counts = [peers_of(n) for n in nodes]
            now = time.monotonic() - t0
            if one_peer is None and min(counts) >= 1:
                one_peer = now
            if min(counts) >= target:
                full = now
                break
            time.sleep(0.5)
        figures["every_node_one_session_secs"] = one_peer and round(one_peer, 2)
        figures["full_authentication_secs"] = full and round(full, 2)
        figures["sessions_per_node"] = {"min": min(counts), "median": statistics.median(counts),
                                        "max": max(counts), "target": target}
        log(f"sessions: min {min(counts)} median {statistics.median(counts)} max {max(counts)}"
            f" (target {target}); full authentication after {figures['full_authentication_secs']} s")

        # Settling: sessions over max_sessions are trimmed once 30 s old,
        # which is churn, not idleness. Wait until no node makes or trims a
        # session for QUIET seconds (at most --settle-secs).
        settle_from = time.monotonic()
        last, quiet_since = churn(nodes), time.monotonic()
        while time.monotonic() - settle_from < args.settle_secs:
            time.sleep(2)
            now_churn = churn(nodes)
            if now_churn != last:
                last, quiet_since = now_churn, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET:
                break
        quiet = time.monotonic() - quiet_since >= QUIET
        figures["quiet_after_secs"] = round(quiet_since - t0, 2) if quiet else None
        log(f"no session made or trimmed for {QUIET} s after {figures['quiet_after_secs']} s"
            if quiet else f"still churning after --settle-secs {args.settle_secs}")

        # Idle: nothing asked of the nodes but their own timers.
        churn_before = churn(nodes)
        before = [n.proc_stat() for n in nodes]
        t_idle = time.monotonic()
        time.sleep(args.idle_secs)
        after = [n.proc_stat() for n in nodes]
        span = time.monotonic() - t_idle
        churn_after = churn(nodes)
        counts = [peers_of(n) for n in nodes]
        figures["idle_churn"] = {
            "handshakes": churn_after[0] - churn_before[0],
            "sessions_trimmed": churn_after[1] - churn_before[1],
            "sessions_after": {"min": min(counts), "median": statistics.median(counts),
                               "max": max(counts)}}
        log(f"during the idle period, all nodes: {figures['idle_churn']}")
        cpu = [100 * (a[0] - b[0]) / span for a, b in zip(after, before)]
        rss = [a[1] / 1024 for a in after]
        figures["idle_cpu_percent_of_a_core"] = {
            "median": round(statistics.median(cpu), 3), "p95": round(pct(cpu, 0.95), 3),
            "max": round(max(cpu), 3), "all_nodes": round(sum(cpu), 1)}
        figures["idle_rss_mb"] = {"median": round(statistics.median(rss), 1),
                                  "max": round(max(rss), 1), "all_nodes": round(sum(rss), 1)}
        log(f"idle CPU per node: {figures['idle_cpu_percent_of_a_core']}; RSS MB: {figures['idle_rss_mb']}")

        # Delegations: K servers answer, everyone else delegates.
        stop = threading.Event()
        servers = [n for n in nodes if n.serve]
        for s in servers:
            threading.Thread(target=serve_inbox, args=(s, stop), daemon=True).start()
        gossip_from = time.monotonic()
        results, lock = [], threading.Lock()

        def delegate(node):
            # A node delegates to a server it holds a session with (a node
            # holds at most max_sessions, so not every server is one).
            try:
                status, body = node.api_call("GET", "/v1/peers")
                held = {p["did"] for p in body["peers"]} if status == 200 else set()
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                held = set()
            near = [s for s in servers if s.did in held]
            for _ in range(args.tasks):
                if not near:
                    with lock:
                        results.append(("no server among its sessions", 0.0))
                    continue
                to = random.choice(near)
                started = time.monotonic()
                try:
                    status, task = node.api_call("POST", "/v1/tasks", {
                        "to": to.did, "resource": "search", "action": "read",
                        "input": f"from n{node.index}", "wait_secs": 20})
                    state = task.get("state") if isinstance(task, dict) else None
                    outcome = state if status == 201 else f"http {status}: {task}"
                except (OSError, ValueError, http.client.HTTPException) as e:
                    outcome = f"error {e}"
                with lock:
                    results.append((outcome, time.monotonic() - started))

        threads = [threading.Thread(target=delegate, args=(n,)) for n in nodes if not n.serve]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [d for o, d in results if o == "succeeded"]
        failures = {}
        for o, _ in results:
            if o != "succeeded":
                o = re.sub(r"did:key:z[1-9A-HJ-NP-Za-km-z]+", "did:…", o)[:120]
                failures[o] = failures.get(o, 0) + 1
        figures["tasks"] = {"sent": len(results), "succeeded": len(ok),
                            "p50_ms": round(1000 * pct(ok, 0.5), 1),
                            "p95_ms": round(1000 * pct(ok, 0.95), 1), "failures": failures}
        log(f"tasks: {figures['tasks']}")

        tasks_done = time.monotonic()
        time.sleep(args.gossip_secs)
        stop.set()
        events.stop = True
        if args.events:
            with events.lock, open(args.events, "w") as f:
                for item in events.items:
                    f.write(json.dumps(item) + "\n")
        # Reports published while the tasks ran (the machine busy with
        # them), and after (the reports the tasks' evidence calls for).
        for name, since, until in (("report_spread_during_tasks", gossip_from, tasks_done),
                                   ("report_spread", tasks_done, float("inf"))):
            delays, reach, complete = spread(events, nodes, since, until)
            figures[name] = {
                "publications": len(reach),
                "deliveries": len(delays),
                "delivery_p50_ms": round(1000 * pct(delays, 0.5), 1),
                "delivery_p95_ms": round(1000 * pct(delays, 0.95), 1),
                "delivery_max_ms": round(1000 * max(delays), 1) if delays else None,
                "reached_everyone": len(complete),
                "reach_median_nodes": statistics.median(reach) if reach else 0,
                "time_to_reach_everyone_p95_ms": round(1000 * pct(complete, 0.95), 1),
            }
            log(f"{name.replace('_', ' ')}: {figures[name]}")

        stats = [n.proc_stat() for n in nodes]
        with open("/proc/meminfo") as f:
            mem = {l.split(":")[0]: int(l.split()[1]) for l in f}
        figures["machine"] = {
            "mem_available_mb": mem["MemAvailable"] // 1024,
            "mem_total_mb": mem["MemTotal"] // 1024,
            "loadavg": open("/proc/loadavg").read().split()[:3],
            "cores": os.cpu_count(),
            "fds_per_node_max": max(s[2] for s in stats),
            "threads_per_node_max": max(s[3] for s in stats),
            "fd_limit": int(subprocess.run(["sh", "-c", "ulimit -n"], capture_output=True,
                                           text=True).stdout.strip() or 0),
            "rss_after_tasks_mb_max": round(max(s[1] for s in stats) / 1024, 1),
            "exited": [n.index for n in nodes if n.proc.poll() is not None],
        }
        log(f"machine: {figures['machine']}")
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                os.killpg(n.proc.pid, signal.SIGTERM)
        for n in nodes:
            if n.proc:
                try:
                    n.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(n.proc.pid, signal.SIGKILL)
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
