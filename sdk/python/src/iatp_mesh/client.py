"""Clients of a mesh node's local agent API: `Client` (blocking) and
`AsyncClient` (asyncio), with the same methods. Errors are raised as
`MeshError` subclasses carrying the field or the rule."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import httpx

from . import errors
from .config import ApiAddress, from_node_config, parse_address
from .models import IncomingTask, Peer, Task

#: Longest single wait the API allows (`wait_secs`).
MAX_WAIT_SECS = 60

Spec = Tuple[str, str, Optional[Dict[str, Any]], Callable[[int, Any], Any]]


def _task(status: int, body: Any) -> Task:
    return Task.from_json(body)


def _incoming(status: int, body: Any) -> Optional[IncomingTask]:
    return None if status == 204 else IncomingTask.from_json(body)


def _raw(status: int, body: Any) -> Any:
    return body


def _drop_none(d: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class _Api:
    """What each call sends and how its answer is read (shared by both
    clients)."""

    @staticmethod
    def delegate(resource: str, action: str, input: str, to: Optional[str],
                 deadline_secs: Optional[int], min_trust: Optional[int], wait_secs: int) -> Spec:
        body = _drop_none({"resource": resource, "action": action, "input": input, "to": to,
                           "deadline_secs": deadline_secs, "min_trust": min_trust,
                           "wait_secs": wait_secs})
        return ("POST", "/v1/tasks", body, _task)

    @staticmethod
    def task(id: str, wait_secs: int) -> Spec:
        return ("GET", f"/v1/tasks/{id}?wait_secs={wait_secs}", None, _task)

    @staticmethod
    def tasks() -> Spec:
        return ("GET", "/v1/tasks", None, lambda s, b: [Task.from_json(t) for t in b["tasks"]])

    @staticmethod
    def cancel(id: str) -> Spec:
        return ("POST", f"/v1/tasks/{id}/cancel", {}, _task)

    @staticmethod
    def next_task(wait_secs: int, lease_secs: int) -> Spec:
        return ("POST", "/v1/inbox/next", {"wait_secs": wait_secs, "lease_secs": lease_secs},
                _incoming)

    @staticmethod
    def progress(id: str, note: Optional[str], lease_secs: int) -> Spec:
        return ("POST", f"/v1/inbox/{id}/progress",
                _drop_none({"note": note, "lease_secs": lease_secs}), _raw)

    @staticmethod
    def answer(id: str, success: bool, output: str) -> Spec:
        return ("POST", f"/v1/inbox/{id}/result", {"success": success, "output": output}, _raw)

    @staticmethod
    def inbox() -> Spec:
        return ("GET", "/v1/inbox", None,
                lambda s, b: [IncomingTask.from_json(t) for t in b["tasks"]])

    @staticmethod
    def agent() -> Spec:
        return ("GET", "/v1/agent", None, _raw)

    @staticmethod
    def peers() -> Spec:
        return ("GET", "/v1/peers", None, lambda s, b: [Peer.from_json(p) for p in b["peers"]])

    @staticmethod
    def trust(did: str) -> Spec:
        return ("GET", f"/v1/trust/{did}", None, _raw)

    @staticmethod
    def grant(to: str, capabilities: List[str], lifetime_secs: Optional[int],
              depth: Optional[int], min_trust: Optional[int]) -> Spec:
        return ("POST", "/v1/grants",
                _drop_none({"to": to, "capabilities": capabilities, "lifetime_secs": lifetime_secs,
                            "depth": depth, "min_trust": min_trust}), _raw)

    @staticmethod
    def revoke(link: str, reason: Optional[str]) -> Spec:
        return ("POST", "/v1/revocations", _drop_none({"link": link, "reason": reason}), _raw)

    @staticmethod
    def record(counterparty: str, kind: str, payload: str) -> Spec:
        return ("POST", "/v1/records",
                {"counterparty": counterparty, "kind": kind, "payload": payload}, _raw)

    @staticmethod
    def proof(index: int) -> Spec:
        return ("GET", f"/v1/records/{index}/proof", None, _raw)


def _transport_args(address: ApiAddress) -> Dict[str, Any]:
    return {"uds": address.uds} if address.uds else {}


def _read(response: httpx.Response, parse: Callable[[int, Any], Any]) -> Any:
    body = response.json() if response.content else None
    if response.status_code >= 400:
        raise errors.from_answer(response.status_code, body)
    return parse(response.status_code, body)


def _address(api: Union[str, ApiAddress]) -> ApiAddress:
    if isinstance(api, ApiAddress):
        return api
    if api.startswith("http://"):
        return ApiAddress(api.rstrip("/"))
    return parse_address(api, Path.cwd())


class Client:
    """A blocking client. `Client.from_config("node.toml")`, or
    `Client("127.0.0.1:7800", token)` / `Client("unix:/path/api.sock", token)`."""

    def __init__(self, api: Union[str, ApiAddress], token: str, timeout: float = 90.0) -> None:
        address = _address(api)
        self._http = httpx.Client(
            base_url=address.base_url,
            headers={"Authorization": f"Bearer {token}"},
            transport=httpx.HTTPTransport(**_transport_args(address)),
            timeout=timeout,
        )

    @classmethod
    def from_config(cls, config: Union[str, Path], timeout: float = 90.0) -> "Client":
        address, token = from_node_config(config)
        return cls(address, token, timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _do(self, spec: Spec) -> Any:
        method, path, body, parse = spec
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as e:
            raise errors.ConnectionFailed(0, "connection", str(e)) from e
        return _read(response, parse)

    # Tasks this agent delegates.

    def delegate(self, resource: str, action: str, input: str = "", *, to: Optional[str] = None,
                 deadline_secs: Optional[int] = None, min_trust: Optional[int] = None,
                 wait_secs: int = 0) -> Task:
        """Delegate a task (to `to`, or the best candidate); returns once it
        is accepted, or answered within `wait_secs`."""
        return self._do(_Api.delegate(resource, action, input, to, deadline_secs, min_trust,
                                      wait_secs))

    def task(self, id: str, wait_secs: int = 0) -> Task:
        return self._do(_Api.task(id, wait_secs))

    def tasks(self) -> List[Task]:
        return self._do(_Api.tasks())

    def wait(self, id: str, timeout: float = 600.0) -> Task:
        """Wait for a task's answer (long-polling), at most `timeout` s."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            task = self.task(id, wait_secs=max(0, min(MAX_WAIT_SECS, int(left))))
            if task.finished or left <= 0:
                return task

    def cancel(self, id: str) -> Task:
        return self._do(_Api.cancel(id))

    # Tasks delegated to this agent (the inbox).

    def next_task(self, wait_secs: int = 30, lease_secs: int = 60) -> Optional[IncomingTask]:
        """Take the oldest task nobody holds, leased; None if none came."""
        return self._do(_Api.next_task(wait_secs, lease_secs))

    def progress(self, id: str, note: Optional[str] = None, lease_secs: int = 60) -> Any:
        return self._do(_Api.progress(id, note, lease_secs))

    def answer(self, id: str, success: bool, output: str = "") -> Any:
        return self._do(_Api.answer(id, success, output))

    def inbox(self) -> List[IncomingTask]:
        return self._do(_Api.inbox())

    def serve(self, handler: Callable[[IncomingTask], str], *, lease_secs: int = 60,
              stop: Optional[Callable[[], bool]] = None) -> None:
        """Run `handler` on each task delegated to this agent until `stop()`
        is true: its return value is the output of a success; an exception
        is a failure (its text the output). The lease is renewed while it
        runs, so a handler may take as long as the task's deadline."""
        from .serve import serve_blocking

        serve_blocking(self, handler, lease_secs=lease_secs, stop=stop)

    # The mesh around the agent.

    def agent(self) -> Dict[str, Any]:
        return self._do(_Api.agent())

    def peers(self) -> List[Peer]:
        return self._do(_Api.peers())

    def trust(self, did: str) -> Dict[str, Any]:
        return self._do(_Api.trust(did))

    def grant(self, to: str, capabilities: List[str], *, lifetime_secs: Optional[int] = None,
              depth: Optional[int] = None, min_trust: Optional[int] = None) -> Dict[str, Any]:
        return self._do(_Api.grant(to, capabilities, lifetime_secs, depth, min_trust))

    def revoke(self, link: str, reason: Optional[str] = None) -> Dict[str, Any]:
        return self._do(_Api.revoke(link, reason))

    def record(self, counterparty: str, kind: str, payload: str) -> Dict[str, Any]:
        return self._do(_Api.record(counterparty, kind, payload))

    def proof(self, index: int) -> Dict[str, Any]:
        return self._do(_Api.proof(index))


class AsyncClient:
    """The asyncio client: the same methods as `Client`, awaited."""

    def __init__(self, api: Union[str, ApiAddress], token: str, timeout: float = 90.0) -> None:
        address = _address(api)
        self._http = httpx.AsyncClient(
            base_url=address.base_url,
            headers={"Authorization": f"Bearer {token}"},
            transport=httpx.AsyncHTTPTransport(**_transport_args(address)),
            timeout=timeout,
        )

    @classmethod
    def from_config(cls, config: Union[str, Path], timeout: float = 90.0) -> "AsyncClient":
        address, token = from_node_config(config)
        return cls(address, token, timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _do(self, spec: Spec) -> Any:
        method, path, body, parse = spec
        try:
            response = await self._http.request(method, path, json=body)
        except httpx.TransportError as e:
            raise errors.ConnectionFailed(0, "connection", str(e)) from e
        return _read(response, parse)

    async def delegate(self, resource: str, action: str, input: str = "", *,
                       to: Optional[str] = None, deadline_secs: Optional[int] = None,
                       min_trust: Optional[int] = None, wait_secs: int = 0) -> Task:
        return await self._do(_Api.delegate(resource, action, input, to, deadline_secs,
                                            min_trust, wait_secs))

    async def task(self, id: str, wait_secs: int = 0) -> Task:
        return await self._do(_Api.task(id, wait_secs))

    async def tasks(self) -> List[Task]:
        return await self._do(_Api.tasks())

    async def wait(self, id: str, timeout: float = 600.0) -> Task:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            left = end - loop.time()
            task = await self.task(id, wait_secs=max(0, min(MAX_WAIT_SECS, int(left))))
            if task.finished or left <= 0:
                return task

    async def cancel(self, id: str) -> Task:
        return await self._do(_Api.cancel(id))

    async def next_task(self, wait_secs: int = 30,
                        lease_secs: int = 60) -> Optional[IncomingTask]:
        return await self._do(_Api.next_task(wait_secs, lease_secs))

    async def progress(self, id: str, note: Optional[str] = None, lease_secs: int = 60) -> Any:
        return await self._do(_Api.progress(id, note, lease_secs))

    async def answer(self, id: str, success: bool, output: str = "") -> Any:
        return await self._do(_Api.answer(id, success, output))

    async def inbox(self) -> List[IncomingTask]:
        return await self._do(_Api.inbox())

    async def serve(self, handler: Callable[[IncomingTask], Any], *, lease_secs: int = 60,
                    stop: Optional[asyncio.Event] = None) -> None:
        """`Client.serve` for coroutine handlers (`async def handler(task)`)."""
        from .serve import serve_async

        await serve_async(self, handler, lease_secs=lease_secs, stop=stop)

    async def agent(self) -> Dict[str, Any]:
        return await self._do(_Api.agent())

    async def peers(self) -> List[Peer]:
        return await self._do(_Api.peers())

    async def trust(self, did: str) -> Dict[str, Any]:
        return await self._do(_Api.trust(did))

    async def grant(self, to: str, capabilities: List[str], *,
                    lifetime_secs: Optional[int] = None, depth: Optional[int] = None,
                    min_trust: Optional[int] = None) -> Dict[str, Any]:
        return await self._do(_Api.grant(to, capabilities, lifetime_secs, depth, min_trust))

    async def revoke(self, link: str, reason: Optional[str] = None) -> Dict[str, Any]:
        return await self._do(_Api.revoke(link, reason))

    async def record(self, counterparty: str, kind: str, payload: str) -> Dict[str, Any]:
        return await self._do(_Api.record(counterparty, kind, payload))

    async def proof(self, index: int) -> Dict[str, Any]:
        return await self._do(_Api.proof(index))
