"""Measure the matcher on a question set: `{"q", "gold": [codes; [] = out of scope], "kind"}` per line."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from guidebot.knowledge.matching import CatalogIndex, Decision


@dataclass(frozen=True)
class Question:
    q: str
    gold: tuple[str, ...]
    kind: str


@dataclass
class Tally:
    total: int = 0
    right: int = 0  # answered with a gold item, without asking back
    resolved: int = 0  # right, or a clarify that offers a gold item
    wrong: int = 0  # answered a wrong item, or offered only wrong ones; for out-of-scope: not declined
    unknown: int = 0  # in scope but said unknown
    declined: int = 0  # out of scope and said unknown
    out_of_scope: int = 0
    failures: list[dict[str, object]] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("total", "right", "resolved", "wrong", "unknown", "declined", "out_of_scope"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def rates(self) -> dict[str, float]:
        in_scope = self.total - self.out_of_scope
        def share(n: int, d: int) -> float:
            return round(100.0 * n / d, 1) if d else 0.0
        return {
            "right": share(self.right, in_scope),
            "resolved": share(self.resolved, in_scope),
            "wrong": share(self.wrong, self.total),
            "unknown": share(self.unknown, in_scope),
            "declined": share(self.declined, self.out_of_scope),
        }


def read_questions(path: Path) -> list[Question]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            questions.append(Question(str(raw["q"]), tuple(raw.get("gold") or ()), str(raw.get("kind", "plain"))))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: expected {{\"q\", \"gold\", \"kind\"}}: {exc}") from None
    return questions


def evaluate(index: CatalogIndex, questions: Iterable[Question]) -> tuple[dict[str, Tally], list[float]]:
    """Per-kind tallies and the latency of each match in milliseconds."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    latencies: list[float] = []
    for question in questions:
        start = time.perf_counter()
        result = index.match(question.q)
        latencies.append((time.perf_counter() - start) * 1000)
        tally = tallies[question.kind]
        tally.total += 1
        offered = [item.code for item in result.items]
        gold = set(question.gold)
        outcome = "ok"
        if not gold:
            tally.out_of_scope += 1
            if result.decision is Decision.UNKNOWN:
                tally.declined += 1
            else:
                tally.wrong += 1
                outcome = "not declined"
        elif result.decision is Decision.UNKNOWN:
            tally.unknown += 1
            outcome = "unknown"
        elif result.decision is Decision.ANSWER and offered[0] in gold:
            tally.right += 1
            tally.resolved += 1
        elif result.decision is Decision.CLARIFY and gold & set(offered):
            tally.resolved += 1
            outcome = "clarified"
        else:
            tally.wrong += 1
            outcome = "wrong"
        if outcome != "ok":
            tally.failures.append({"q": question.q, "kind": question.kind, "outcome": outcome,
                                   "decision": result.decision.value,
                                   "offered": [item.name for item in result.items],
                                   "gold": list(question.gold)})
    return dict(tallies), latencies


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def format_report(tallies: dict[str, Tally], latencies: list[float]) -> str:
    lines = [f"{'kind':<14}{'n':>5}{'right%':>8}{'resolved%':>11}{'wrong%':>8}{'unknown%':>10}{'declined%':>11}"]
    overall = Tally()
    for kind in sorted(tallies):
        tally = tallies[kind]
        overall.add(tally)
        lines.append(_row(kind, tally))
    lines.append(_row("overall", overall))
    lines.append(f"latency ms: p50 {percentile(latencies, 0.5):.2f}  p99 {percentile(latencies, 0.99):.2f}")
    return "\n".join(lines)


def _row(kind: str, tally: Tally) -> str:
    rates = tally.rates()
    in_scope = tally.total - tally.out_of_scope
    def cell(name: str, applies: bool, width: int) -> str:
        return f"{rates[name]:>{width}.1f}" if applies else f"{'-':>{width}}"
    return (f"{kind:<14}{tally.total:>5}{cell('right', in_scope > 0, 8)}{cell('resolved', in_scope > 0, 11)}"
            f"{cell('wrong', True, 8)}{cell('unknown', in_scope > 0, 10)}"
            f"{cell('declined', tally.out_of_scope > 0, 11)}")
