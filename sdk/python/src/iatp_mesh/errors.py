"""Errors from the agent API, one class per kind; each carries the API's
stable code, the field that was wrong or the rule that refused."""

from __future__ import annotations

from typing import Any, Optional


class MeshError(Exception):
    """An error answer from the node's agent API (docs/API.md §8.2)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: Optional[str] = None,
        rule: Optional[str] = None,
        refusal_code: Optional[int] = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.rule = rule
        self.refusal_code = refusal_code
        where = f"{field}: " if field else ""
        why = f", rule {rule}" if rule else ""
        super().__init__(f"{where}{message} ({code}{why})")


class InvalidInput(MeshError):
    """A field's value is wrong (`field` names it), or the body's shape."""


class Unauthorized(MeshError):
    """No token, or the wrong one."""


class Denied(MeshError):
    """This agent's own gate denied it (`rule`, e.g. trust_below_link_minimum)."""


class Refused(MeshError):
    """The peer refused (`rule` and `refusal_code`, e.g. no_handler / 21)."""


class NotFound(MeshError):
    """No such task, link or record."""


class NoCandidate(MeshError):
    """No connected agent offers the resource with the trust asked for."""


class Unavailable(MeshError):
    """The node or the peer could not answer now."""


class ConnectionFailed(MeshError):
    """The node's agent API could not be reached."""


_BY_CODE = {
    "invalid": InvalidInput,
    "bad_body": InvalidInput,
    "bad_query": InvalidInput,
    "unauthorized": Unauthorized,
    "denied": Denied,
    "refused": Refused,
    "not_found": NotFound,
    "no_candidate": NoCandidate,
    "no_session": Refused,
    "unavailable": Unavailable,
    "peer_failed": Unavailable,
}


def from_answer(status: int, body: Any) -> MeshError:
    """The exception for an error answer."""
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("error", f"http_{status}"))
    cls = _BY_CODE.get(code, MeshError)
    return cls(
        status,
        code,
        str(body.get("message", "")),
        field=body.get("field"),
        rule=body.get("rule"),
        refusal_code=body.get("refusal_code"),
    )
