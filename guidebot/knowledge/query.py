"""A message as the matcher reads it: the evidence it holds and what the example asks say of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice

from guidebot.knowledge.asks import AskMatch, OutsideTopic
from guidebot.knowledge.fields import Field


@dataclass
class Unit:
    """One piece of evidence in a message: a word, or a concept with its official phrasings."""

    alternatives: tuple[str, ...]
    weight: float
    is_concept: bool = False
    text: str = ""
    soft: bool = False  # a field word (材料, 窗口 …): evidence when an item has it, never counted against one
    foreign: bool = False  # a document or fee the catalog never names (银行卡, 签证): counted against in full


@dataclass
class Query:
    """A message as read: its compact text, the field asked, its evidence, and what the asks say of it."""

    text: str
    field: Field
    units: list[Unit] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    situations: frozenset[str] = frozenset()
    kinds: frozenset[tuple[str, str]] = frozenset()  # kinds of things named (kinds.py): a car, a bank card
    ages: tuple[int, ...] = ()  # ages given (ages.py): 娃儿今年十岁
    asked: dict[int, AskMatch] = field(default_factory=dict)  # support of example asks by item position, best first
    outside_ask: tuple[OutsideTopic, AskMatch] | None = None  # the nearest ask about a thing the center does not do
    clear_leader: int | None = None  # the item whose asks are nearer than any other's by a clear lead

    def nearest_supports(self) -> tuple[float, float]:
        """The support of the item whose asks are nearest, and of the next one (0 where there is none)."""
        nearest, next_nearest, *_ = [match.similarity for match in islice(self.asked.values(), 2)] + [0.0, 0.0]
        return nearest, next_nearest
