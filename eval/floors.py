"""``--fail-under METRIC=VALUE``: one parser and one check for every command that gates on its figures."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping


def parse_floor(item: str, known: Collection[str]) -> tuple[str, float]:
    """``"f1=0.5"`` -> ``("f1", 0.5)``; ValueError saying what is wrong and what is accepted."""
    name, sep, value = item.partition("=")
    name = name.strip()
    if not sep:
        raise ValueError(f"--fail-under {item!r}: expected METRIC=VALUE")
    if name not in known:
        raise ValueError(
            f"--fail-under {item!r}: unknown metric {name!r}; known: {', '.join(known)}"
        )
    try:
        least = float(value)
    except ValueError:
        raise ValueError(f"--fail-under {item!r}: {value!r} is not a number") from None
    if not math.isfinite(least):
        raise ValueError(f"--fail-under {item!r}: the floor must be a finite number")
    return name, least


def missed_floors(
    label: str, figures: Mapping[str, float | None], floors: Mapping[str, float]
) -> list[str]:
    """One message per floor that ``figures`` misses: under it, or not measured (None, absent)."""
    missed = []
    for name, least in floors.items():
        got = figures.get(name)
        if got is None:
            missed.append(f"{label}: {name} was not measured (floor {least:g})")
        elif got < least:
            missed.append(f"{label}: {name} = {got:.4f} < {least:g}")
    return missed
