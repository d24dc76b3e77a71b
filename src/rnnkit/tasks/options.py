"""Reading ``KEY=VALUE`` settings from the command line."""

from __future__ import annotations

import json


def parse_value(text: str):
    """``"0.1"`` -> 0.1, ``"true"`` -> True, ``"[1, 2]"`` -> [1, 2]; anything else stays text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items, option: str, parse=parse_value) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": parse("1"), "b": parse("x")}``; a clear error otherwise."""
    settings = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"{option} {item!r} must be written KEY=VALUE")
        settings[key.strip()] = parse(value.strip())
    return settings
