"""A small validator for the request and reply shapes of the native APIs (standard library
only, like the rest of the simulator): enough of JSON Schema for what the APIs' published
models say — types, required fields, enums, lengths and bounds, arrays of a shape.

A shape is a dict:

    {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}
    {"type": "array", "items": {...}, "maxItems": 50}
    {"type": "string", "enum": [...], "format": "date-time", "minLength": 1}
    {"type": "integer", "minimum": 1, "maximum": 100}

`problems(value, shape, where)` lists what is wrong, each naming the field by its path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
}


def problems(value: Any, shape: dict, where: str = "body") -> list[str]:
    """What is wrong with `value` against `shape` (empty when it matches)."""
    kind = shape.get("type")
    if kind:
        expected = TYPES[kind]
        bad_bool = isinstance(value, bool) and kind in ("integer", "number")
        if not isinstance(value, expected) or bad_bool:
            return [f"{where}: expected {kind}, got {type(value).__name__}"]
    found: list[str] = []
    if "enum" in shape and value not in shape["enum"]:
        found.append(f"{where}: {value!r} is not one of {', '.join(map(str, shape['enum']))}")
    if isinstance(value, str):
        found += _string_problems(value, shape, where)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in shape and value < shape["minimum"]:
            found.append(f"{where}: {value} is below {shape['minimum']}")
        if "maximum" in shape and value > shape["maximum"]:
            found.append(f"{where}: {value} is above {shape['maximum']}")
    if isinstance(value, list):
        if "maxItems" in shape and len(value) > shape["maxItems"]:
            found.append(f"{where}: {len(value)} items, at most {shape['maxItems']}")
        if "minItems" in shape and len(value) < shape["minItems"]:
            found.append(f"{where}: {len(value)} items, at least {shape['minItems']}")
        for n, item in enumerate(value):
            found += problems(item, shape.get("items", {}), f"{where}[{n}]")
    if isinstance(value, dict):
        for name in shape.get("required", ()):
            if name not in value:
                found.append(f"{where}.{name}: missing")
        for name, sub in shape.get("properties", {}).items():
            if name in value and value[name] is not None:
                found += problems(value[name], sub, f"{where}.{name}")
    return found


def _string_problems(value: str, shape: dict, where: str) -> list[str]:
    found = []
    if len(value) < shape.get("minLength", 0):
        found.append(f"{where}: empty" if not value else f"{where}: too short")
    if "maxLength" in shape and len(value) > shape["maxLength"]:
        found.append(f"{where}: longer than {shape['maxLength']}")
    if shape.get("format") == "date-time":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            found.append(f"{where}: {value!r} is not an ISO 8601 date-time")
        else:
            if moment.tzinfo is None:
                found.append(f"{where}: {value!r} has no offset")
    return found


def obj(required: tuple[str, ...] = (), **properties: dict) -> dict:
    """An object shape, briefly."""
    return {"type": "object", "required": list(required), "properties": properties}


def string(**extra: Any) -> dict:
    return {"type": "string", **extra}


def array(items: dict, **extra: Any) -> dict:
    return {"type": "array", "items": items, **extra}


INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
DATE_TIME = {"type": "string", "format": "date-time"}
