"""`serve(handler)`: run the tasks delegated to this agent. Each task is
taken from the inbox with a lease; the lease is renewed while the handler
runs (so a handler may take minutes); the handler's return value is the
output of a success, an exception a failure. If this process dies, the
lease runs out and the node fails the task — it never hangs."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any, Callable, Optional, Protocol

from . import errors
from .models import IncomingTask


class _Inbox(Protocol):
    """What serving needs of a client (`Client`)."""

    def next_task(self, wait_secs: int, lease_secs: int) -> Optional[IncomingTask]: ...

    def progress(self, id: str, note: Optional[str] = None, lease_secs: int = 60) -> Any: ...

    def answer(self, id: str, success: bool, output: str = "") -> Any: ...

#: How long one take waits for a task.
TAKE_WAIT_SECS = 5


def _outcome(result: Any) -> str:
    return "" if result is None else str(result)


def serve_blocking(client: _Inbox, handler: Callable[[IncomingTask], Any], *,
                   lease_secs: int, stop: Optional[Callable[[], bool]]) -> None:
    while not (stop and stop()):
        task = client.next_task(wait_secs=TAKE_WAIT_SECS, lease_secs=lease_secs)
        if task is None:
            continue
        done = threading.Event()

        def renew(task_id: str = task.id) -> None:
            while not done.wait(lease_secs / 3):
                try:
                    client.progress(task_id, lease_secs=lease_secs)
                except errors.MeshError:
                    return  # cancelled or expired: the node answered it

        renewer = threading.Thread(target=renew, daemon=True)
        renewer.start()
        try:
            output, success = _outcome(handler(task)), True
        except Exception as e:  # the handler's failure is the task's
            output, success = f"{type(e).__name__}: {e}", False
        finally:
            done.set()
            renewer.join()
        try:
            client.answer(task.id, success, output)
        except errors.NotFound:
            pass  # cancelled or past its deadline meanwhile


async def serve_async(client: Any, handler: Callable[[IncomingTask], Any], *,
                      lease_secs: int, stop: Optional[asyncio.Event]) -> None:
    while not (stop and stop.is_set()):
        task = await client.next_task(wait_secs=TAKE_WAIT_SECS, lease_secs=lease_secs)
        if task is None:
            continue

        async def renew(task_id: str = task.id) -> None:
            while True:
                await asyncio.sleep(lease_secs / 3)
                try:
                    await client.progress(task_id, lease_secs=lease_secs)
                except errors.MeshError:
                    return

        renewer = asyncio.create_task(renew())
        try:
            result = handler(task)
            if inspect.isawaitable(result):
                result = await result
            output, success = _outcome(result), True
        except Exception as e:
            output, success = f"{type(e).__name__}: {e}", False
        finally:
            renewer.cancel()
        try:
            await client.answer(task.id, success, output)
        except errors.NotFound:
            pass
