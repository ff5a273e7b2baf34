"""Who acted: a user, or a named task or process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    user: Any = None
    label: str = "system"

    @classmethod
    def of(cls, who: Any) -> Actor:
        """Accept an Actor, a User, or a label such as 'task:status_sync'."""
        if isinstance(who, Actor):
            return who
        if who is None:
            return SYSTEM
        if isinstance(who, str):
            return cls(user=None, label=who)
        return cls(user=who, label=who.get_username())


SYSTEM = Actor()
