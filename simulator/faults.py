"""Switchable fault injection: what a misbehaving channel does to its clients.

A rule names a kind of fault, where it applies (a channel or all, a method, a path pattern)
and how often (the next N matching requests, after letting K through, or with a probability
drawn from a seeded generator, so a test can rely on the exact sequence).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from .contract import ContractError, as_float_or_none, as_int, as_list, choice

# Kinds answered instead of (or, with apply="after", after) the real reply.
REPLY_KINDS = ("error", "rate_limit", "garbage", "unauthorized", "disconnect")
# `slow` delays and then lets the request go on; `fail_items` fails items inside a valid reply.
KINDS = (*REPLY_KINDS, "slow", "fail_items")
GARBAGE_MODES = ("text", "wrong_shape", "truncated", "empty")

_KEYS = {
    "kind",
    "channel",
    "path",
    "method",
    "count",
    "after",
    "probability",
    "seed",
    "status",
    "retryAfter",
    "delay",
    "garbage",
    "itemIds",
    "apply",
}


@dataclass
class FaultRule:
    id: int
    kind: str
    channel: str | None = None
    path: str = "*"
    method: str | None = None
    count: int | None = None
    after: int = 0
    probability: float | None = None
    seed: int | None = None
    status: int = 500
    retry_after: int = 1
    delay: float = 1.0
    garbage: str = "text"
    item_ids: list[str] = field(default_factory=list)
    apply: str = "before"
    matched: int = 0
    applied: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def from_dict(cls, rule_id: int, raw: dict[str, Any]) -> FaultRule:
        """Build a rule from the control API's JSON (or form) fields, rejecting unknown ones."""
        if not isinstance(raw, dict):
            raise ContractError(f"fault: expected an object, got {raw!r}")
        unknown = sorted(set(raw) - _KEYS - {"next"})
        if unknown:
            raise ContractError(f"fault: unknown field(s) {', '.join(unknown)}")
        raw = {k: v for k, v in raw.items() if v not in (None, "")}
        kind = choice(raw.get("kind"), KINDS, "fault.kind")
        rule = cls(id=rule_id, kind=kind)
        rule.channel = raw.get("channel") or None
        rule.path = str(raw.get("path", "*"))
        if not rule.path.startswith("/") and rule.path != "*":
            raise ContractError(f"fault.path: {rule.path!r} must start with / (or be *)")
        if "method" in raw:
            rule.method = choice(str(raw["method"]).upper(), ("GET", "POST"), "fault.method")
        if "count" in raw:
            rule.count = as_int(raw["count"], "fault.count", minimum=1)
        rule.after = as_int(raw.get("after", 0), "fault.after", minimum=0)
        rule.probability = as_float_or_none(raw.get("probability"), "fault.probability", 0, 1)
        if "seed" in raw:
            rule.seed = as_int(raw["seed"], "fault.seed")
            rule.rng = random.Random(rule.seed)
        default_status = {"rate_limit": 429, "unauthorized": 401}.get(kind, 500)
        rule.status = as_int(raw.get("status", default_status), "fault.status", 100, 599)
        rule.retry_after = as_int(raw.get("retryAfter", 1), "fault.retryAfter", minimum=0)
        rule.delay = as_float_or_none(raw.get("delay", 1.0), "fault.delay", 0, 600) or 0.0
        rule.garbage = choice(raw.get("garbage", "text"), GARBAGE_MODES, "fault.garbage")
        rule.item_ids = as_list(raw.get("itemIds", []), "fault.itemIds")
        rule.apply = choice(raw.get("apply", "before"), ("before", "after"), "fault.apply")
        if rule.apply == "after" and kind not in REPLY_KINDS:
            raise ContractError(f"fault.apply: 'after' only suits {', '.join(REPLY_KINDS)}")
        return rule

    def fires(self, method: str, path: str, item_ids: set[str] | None = None) -> bool:
        """Count a matching request and say whether the fault hits it (call under the lock)."""
        if self.method and method != self.method:
            return False
        if not fnmatchcase(path, self.path):
            return False
        if (
            self.kind == "fail_items"
            and self.item_ids
            and not (item_ids or set()) & set(self.item_ids)
        ):
            return False
        self.matched += 1
        if self.matched <= self.after or self.exhausted:
            return False
        if self.probability is not None and self.rng.random() >= self.probability:
            return False
        self.applied += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.applied >= self.count

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "channel": self.channel,
            "path": self.path,
            "method": self.method,
            "count": self.count,
            "after": self.after,
            "probability": self.probability,
            "seed": self.seed,
            "status": self.status,
            "retryAfter": self.retry_after,
            "delay": self.delay,
            "garbage": self.garbage,
            "itemIds": self.item_ids,
            "apply": self.apply,
            "matched": self.matched,
            "applied": self.applied,
            "exhausted": self.exhausted,
        }


def fault_reply(rule: FaultRule) -> tuple[int, dict[str, str], bytes]:
    """The HTTP status, extra headers and body a reply-kind fault sends."""
    if rule.kind == "rate_limit":
        body = b'{"status": "FAILED", "error": "too many requests (injected)"}'
        return rule.status, {"Retry-After": str(rule.retry_after)}, body
    if rule.kind == "unauthorized":
        return rule.status, {}, b'{"status": "FAILED", "error": "token expired (injected)"}'
    if rule.kind == "error":
        body = f'{{"status": "FAILED", "error": "injected HTTP {rule.status}"}}'.encode()
        return rule.status, {}, body
    if rule.garbage == "text":
        return 200, {"Content-Type": "text/html"}, b"<html><body>Service busy</body></html>"
    if rule.garbage == "wrong_shape":
        return 200, {}, b'[{"unexpected": "shape"}]'
    if rule.garbage == "truncated":
        return 200, {}, b'{"orders": [{"id": "'
    return 200, {}, b""
