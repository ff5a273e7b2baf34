"""What a bulk operation did, object by object, for the admin to report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    done: list[Any] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    created: list[Any] = field(default_factory=list)

    def fail(self, obj: Any, reason: str) -> None:
        self.failed.append((str(obj), str(reason)))

    def merge(self, other: Outcome) -> Outcome:
        self.done += other.done
        self.failed += other.failed
        self.created += other.created
        return self

    @property
    def ok(self) -> bool:
        return not self.failed
