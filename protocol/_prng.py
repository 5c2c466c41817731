"""SplitMix64: a tiny deterministic generator for workloads and the simulator.

Not randomness: the same seed always gives the same sequence, on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["SplitMix64"]

T = TypeVar("T")
_M = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed: int) -> None:
        self.state = seed & _M

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _M
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n

    def chance(self, per_mille: int) -> bool:
        return self.below(1000) < per_mille

    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.below(len(seq))]

    def bytes(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += self.next().to_bytes(8, "big")
        return out[:n]

    def shuffle(self, items: list[T]) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
