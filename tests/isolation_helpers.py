"""Importable functions for tests/test_isolation.py (a spawned child imports what it runs by module name)."""

from __future__ import annotations


def hold(megabytes: int) -> int:
    """Touch ``megabytes`` of memory and return how many bytes were held."""
    block = bytearray(megabytes * 1024 * 1024)
    for i in range(0, len(block), 4096):  # touch every page: resident, not merely reserved
        block[i] = 1
    return len(block)


def fail(message: str) -> None:
    raise ValueError(message)
