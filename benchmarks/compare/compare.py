#!/usr/bin/env python3
"""Side by side: this project and the Agent Governance Toolkit's Agent Mesh.

Installs the competitor's published packages into a throwaway directory
(a venv with AGT Python 5.0.0, a scratch crate on `agentmesh` 4.0.0),
builds this project's side (`mesh-node --example compare_side`), then times
five operations on every side in interleaved rounds and prints, per
operation, each side's median with its range over rounds and what each side
actually checked. Standard library only; see README.md beside this file.

    python3 benchmarks/compare/compare.py [--rounds 7] [--json out.json]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
AGT_PYTHON = ["agent-governance-toolkit-core==5.0.0", "agent-governance-toolkit-protocols==5.0.0"]
AGT_CRATE = "4.0.0"

# Operation, samples per side per round.
OPS = [
    ("handshake", 200),
    ("append", 200),
    ("verify_10k", 3),
    ("delegation_depth3", 500),
    ("trust_update_lookup", 5000),
]
TITLES = {
    "handshake": "mutual handshake",
    "append": "one durable append",
    "verify_10k": "verify a 10,000-entry log",
    "delegation_depth3": "depth-3 delegation check",
    "trust_update_lookup": "trust update + lookup",
}


def step(what):
    print(f"== {what}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    """Run a set-up command; on failure say which and stop."""
    result = subprocess.run(cmd, **kw)
    if result.returncode != 0:
        sys.exit(f"compare: `{' '.join(map(str, cmd))}` failed (exit {result.returncode})")


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def build_ours():
    step("building this project's side (cargo build --release --example compare_side)")
    run(["cargo", "build", "--release", "--locked", "-p", "mesh-node", "--example", "compare_side"],
        cwd=REPO)
    return [str(target_dir() / "release" / "examples" / "compare_side")]


def install_agt_python(work):
    step(f"installing {' '.join(AGT_PYTHON)} into a throwaway venv")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *AGT_PYTHON])
    return [str(py), "-W", "ignore::DeprecationWarning", str(HERE / "agt_python_side.py")]


def build_agt_rust(work):
    step(f"building a scratch crate on agentmesh {AGT_CRATE} (crates.io)")
    crate = work / "agt-rust"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        "[package]\nname = \"agt-rust-side\"\nversion = \"0.0.0\"\nedition = \"2021\"\n"
        "publish = false\n\n[dependencies]\n"
        f"agentmesh = {{ version = \"={AGT_CRATE}\", default-features = false }}\n\n"
        "[profile.release]\nopt-level = 3\n\n[workspace]\n"
    )
    shutil.copy(HERE / "agt_rust_side.rs", crate / "src" / "main.rs")
    env = dict(os.environ, CARGO_TARGET_DIR=str(crate / "target"))
    run(["cargo", "build", "--release", "--quiet"], cwd=crate, env=env)
    return [str(crate / "target" / "release" / "agt-rust-side")]


class Side:
    """One worker process speaking the line protocol of README.md."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        hello = json.loads(self.proc.stdout.readline())
        self.name, self.checks = hello["side"], hello["checks"]

    def time(self, op, n):
        self.proc.stdin.write(f"{op} {n}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"compare: {self.name} stopped while timing {op}")
        answer = json.loads(line)
        return answer.get("samples_us")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def fsync_floor(n):
    """Median of `n` 200-byte appends each followed by fsync, in the temporary
    directory both sides write their logs to: what any append that is on disk
    when it returns costs at least, on this filesystem."""
    import time
    samples = []
    with tempfile.NamedTemporaryFile() as f:
        for _ in range(n):
            start = time.perf_counter_ns()
            f.write(b"x" * 200)
            f.flush()
            os.fsync(f.fileno())
            samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples)


def fmt(us):
    if us is None:
        return "—"
    if us >= 10_000:
        return f"{us / 1000:,.1f} ms"
    if us >= 100:
        return f"{us:,.0f} µs"
    if us >= 1:
        return f"{us:.2f} µs"
    return f"{us * 1000:.0f} ns"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--work", type=Path, help="keep the venv and scratch crate here "
                    "(default: a temporary directory, removed at the end)")
    ap.add_argument("--json", type=Path, help="also write every round's medians here")
    args = ap.parse_args()
    if args.rounds < 1:
        sys.exit("compare: --rounds must be at least 1")

    temp = None
    if args.work is None:
        temp = tempfile.TemporaryDirectory(prefix="mesh-compare-")
        work = Path(temp.name)
    else:
        work = args.work
        if work.exists() and any(work.iterdir()):
            sys.exit(f"compare: --work {work}: not empty; give a new or empty directory")
        work.mkdir(parents=True, exist_ok=True)

    try:
        commands = [build_ours(), install_agt_python(work), build_agt_rust(work)]
        sides = [Side(c) for c in commands]
        step("warming up (set-up is untimed: keys, the 10,000-entry logs)")
        for side in sides:
            for op, _ in OPS:
                side.time(op, 1)
        medians = {op: {s.name: [] for s in sides} for op, _ in OPS}
        floor = []
        for r in range(args.rounds):
            step(f"round {r + 1} of {args.rounds}")
            floor.append(fsync_floor(200))
            for op, n in OPS:
                # Rotate who goes first so no side always runs on a warm cache.
                order = sides[r % len(sides):] + sides[:r % len(sides)]
                for side in order:
                    samples = side.time(op, n)
                    if samples:
                        medians[op][side.name].append(statistics.median(samples))
        for side in sides:
            side.close()
    finally:
        if temp is not None:
            temp.cleanup()

    ours = sides[0].name
    print(f"\n{args.rounds} interleaved rounds; per side: median of round medians "
          "(range over rounds), and the ratio to this project's median\n")
    for op, n in OPS:
        print(f"## {TITLES[op]} ({n} samples per side per round)")
        base = medians[op][ours]
        base_mid = statistics.median(base) if base else None
        for side in sides:
            got = medians[op][side.name]
            if not got:
                print(f"  {side.name:<28} —  (not offered)")
                continue
            mid = statistics.median(got)
            ratio = f"{mid / base_mid:.2f}×" if base_mid else ""
            print(f"  {side.name:<28} {fmt(mid):>10}  ({fmt(min(got))} – {fmt(max(got))})  {ratio}")
        if op == "append":
            print(f"  {'floor: 200-byte write + fsync':<28} {fmt(statistics.median(floor)):>10}"
                  f"  ({fmt(min(floor))} – {fmt(max(floor))})")
        for side in sides:
            what = side.checks.get(op)
            print(f"    {side.name}: {what if what else 'nothing of the kind in this package'}")
        print()
    if args.json:
        args.json.write_text(json.dumps({"rounds": args.rounds, "medians_us": medians,
                                         "fsync_floor_us": floor,
                                         "checks": {s.name: s.checks for s in sides}},
                                        indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
