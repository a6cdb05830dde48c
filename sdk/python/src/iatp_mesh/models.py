"""What the agent API answers, as typed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

#: States a delegated task ends in (besides "running").
FINISHED = ("succeeded", "failed", "cancelled", "expired", "overdue")


@dataclass(frozen=True)
class Task:
    """A task this agent delegated (its id is the task's grant)."""

    id: str
    to: str
    resource: str
    action: str
    state: str
    deadline: int
    output: Optional[str]
    output_hex: Optional[str]
    delegate_record: Optional[int]
    result_record: Optional[int]

    @property
    def finished(self) -> bool:
        """Whether the delegatee's answer is in (or it is overdue)."""
        return self.state in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Task":
        return cls(
            id=d["id"],
            to=d["to"],
            resource=d["resource"],
            action=d["action"],
            state=d["state"],
            deadline=d["deadline"],
            output=d.get("output"),
            output_hex=d.get("output_hex"),
            delegate_record=d.get("delegate_record"),
            result_record=d.get("result_record"),
        )


@dataclass(frozen=True)
class IncomingTask:
    """A task delegated to this agent, taken from its inbox with a lease."""

    id: str
    sender: str
    resource: str
    action: str
    input: Optional[str]
    input_hex: Optional[str]
    deadline: int
    lease_secs_left: Optional[int]
    progress: Optional[str]

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "IncomingTask":
        return cls(
            id=d["id"],
            sender=d["from"],
            resource=d["resource"],
            action=d["action"],
            input=d.get("input"),
            input_hex=d.get("input_hex"),
            deadline=d["deadline"],
            lease_secs_left=d.get("lease_secs_left"),
            progress=d.get("progress"),
        )


@dataclass(frozen=True)
class Peer:
    """An agent holding a session with this one, and our trust in it."""

    did: str
    name: str
    org: str
    score: int
    tier: str
    capabilities: List[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Peer":
        return cls(
            did=d["did"],
            name=d["name"],
            org=d["org"],
            score=d["score"],
            tier=d["tier"],
            capabilities=list(d.get("capabilities", [])),
        )
