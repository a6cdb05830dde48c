"""iatp-mesh: the agent mesh from Python.

Beside each agent runs a mesh node (`mesh-node run`) with its local agent
API on; this package speaks that API:

    from iatp_mesh import Client

    with Client.from_config("node.toml") as mesh:
        task = mesh.delegate("search", "read", "rust sans-io")   # to the best candidate
        done = mesh.wait(task.id)
        print(done.state, done.output)

and serves the tasks other agents delegate to this one:

    mesh.serve(lambda task: f"searched {task.input}")

Refusals are raised as exceptions carrying the rule (`Refused`, `Denied`, …).
"""

from .client import AsyncClient, Client
from .config import ApiAddress, ConfigError
from .errors import (
    ConnectionFailed,
    Denied,
    InvalidInput,
    MeshError,
    NoCandidate,
    NotFound,
    Refused,
    Unauthorized,
    Unavailable,
)
from .models import IncomingTask, Peer, Task

__all__ = [
    "ApiAddress",
    "AsyncClient",
    "Client",
    "ConfigError",
    "ConnectionFailed",
    "Denied",
    "IncomingTask",
    "InvalidInput",
    "MeshError",
    "NoCandidate",
    "NotFound",
    "Peer",
    "Refused",
    "Task",
    "Unauthorized",
    "Unavailable",
]
__version__ = "0.1.0"
