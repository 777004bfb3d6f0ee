"""Counts as a person reads them: '1 retry', '2 retries', '0 peers' — one rule for the dashboard,
the doctor and every command that prints how many of something there are."""

from __future__ import annotations


def noun(n: int, singular: str, plural: str | None = None) -> str:
    """The word for `n` of them: `singular` for exactly one, else `plural` (default: singular + 's')."""
    return singular if n == 1 else plural or singular + "s"


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """'1 retry', '3 retries', '0 initiations'."""
    return f"{n} {noun(n, singular, plural)}"
