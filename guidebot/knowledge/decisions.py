"""From the ranked candidates of a message to a decision: answer one item, clarify among a few, or
say unknown — naming what the center does not handle, or hearing what is about the center itself.

The thresholds are fractions (see matching.py), so one set serves a 6-item catalog and 100,000 items;
they were tuned on eval/questions.jsonl and the read held-out sets (docs/evaluation.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from rapidfuzz.distance import LCSseq

from guidebot.knowledge.asks import ASK_MIN, SHORT_MESSAGE
from guidebot.knowledge.catalog import Item
from guidebot.knowledge.fields import Field
from guidebot.knowledge.kinds import kind_words
from guidebot.knowledge.normalize import name_variants
from guidebot.knowledge.places import Elsewhere, serves_between_places
from guidebot.knowledge.query import Query
from guidebot.knowledge.situations import for_other_situation


class Decision(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Scored:
    item: Item
    score: float  # up to 1 + EXACT_NAME_BONUS: a name written out in full ranks above a paraphrase
    query_coverage: float
    name_coverage: float
    support: float = 0.0  # how near this item's example asks are (asks.py)
    support_bonus: float = 0.0  # what that support added to the score


@dataclass(frozen=True)
class MatchResult:
    decision: Decision
    field: Field
    choices: tuple[Scored, ...]  # answer: the item first; clarify: the choices offered; unknown: ()
    ranked: tuple[Scored, ...]  # the best candidates, best first, whatever the decision
    main_item: str = ""  # set when the choices are situations of one main item
    corrected: str = ""  # the message as read after typo correction
    # unknown: what the message named that this center does not handle (银行卡, 签证, 上海), for the reply
    outside: tuple[str, ...] = ()
    about_center: bool = False  # unknown: the message is about this center itself (its staff, its phone …)
    inferred: bool = False  # answer/clarify: the message's own words name no item; its asks chose

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(s.item for s in self.choices)

    @property
    def best(self) -> Item | None:
        return self.choices[0].item if self.choices else None


# The best candidate must explain this much of the message and score this much, else unknown; below
# SURE_SCORE, every candidate within UNSURE_MARGIN of it is offered too (within TIE_MARGIN above it).
MIN_QUERY_COVERAGE = 0.5
MIN_SCORE = 0.55
TIE_MARGIN = 0.04
SURE_SCORE = 0.75
UNSURE_MARGIN = 0.1
MAX_CHOICES = 5
# Example asks (asks.py) in the decision.
OUTSIDE_SUPPORT_MIN = 0.6  # support of a thing the center does not do, to decline for it …
OUTSIDE_WORDS_MAX = 0.85  # … and no item is named by the message's own words
OUTSIDE_MARGIN = 0.0  # … when it is at least as near as any item's asks
DISAGREE_GAP = 0.3  # support by which the nearest asks' item must beat the winner's to be offered too …
DISAGREE_LONG = 25  # … in a message shorter than this; in a longer story, whose words name neighbouring
DISAGREE_LONG_GAP = 0.05  # things too, any disagreement is offered
ASKS_OVERRULE_GAP = 0.4  # support by which the nearest asks' item is answered instead of the winner …
# … when the message does not say the winner's name in its own words: a name found only through a synonym's
# official phrase has a name coverage of at most 0.85 (matching.SYNONYM_NAME_FACTOR); 灵活就业人员参保登记 says it.
OVERRULE_NAME_MAX = 0.9
OVERRULE_SAID_SHARE = 0.5  # … nor is mostly made of it (建设项目环境影响报告表怎么报批)
OVERRULER_NAME_MARGIN = 0.1  # … and names the asks' item clearly less (小饭馆 names 小经营店备案 and 食品经营许可) …
OVERRULER_LEAD = 0.1  # … whose asks lead the next item's by this much: asks split between two decide nothing
ASKS_ALONE_MIN = 0.55  # support on which the asks answer a message whose own words name no item …
ASKS_ALONE_MARGIN = 0.1  # … when no topic the center does not handle is as near
ASKS_ALONE_TIE = 0.1  # items supported within this of the nearest are offered with it
# A short message is contained in many asks: they answer it alone only when one item's are far nearer
# than any other's and than any topic the center does not handle (刻章许可 → 公章刻制业特种行业许可证核发).
ASKS_ALONE_SHORT_MIN = 0.9
ASKS_ALONE_SHORT_MARGIN = 0.4


class Scorer(Protocol):
    """What deciding needs of the index that scored the candidates."""

    items: list[Item]
    elsewhere: Elsewhere

    def score(self, position: int, query: Query) -> Scored: ...

    def has_asks(self, item: Item) -> bool: ...

    def situations_of(self, item: Item) -> frozenset[str]: ...

    def other_kind(self, position: int, query: Query) -> bool: ...

    def told_apart(self, name: str, rival: str, query: Query, *, rival_said: bool = False) -> bool: ...


class Decider:
    def __init__(self, index: Scorer) -> None:
        self._index = index

    def _declines(self, query: Query, ranked: Sequence[Scored]) -> bool:
        """True when the message is nearer an ask about something the center does not do than any
        ask of an item it does (小车驾驶证到期了 against 拖拉机驾驶证)."""
        if query.outside_ask is None:
            return False
        topic, match = query.outside_ask
        # An item of another kind (拖拉机驾驶证 for a 驾照) is not one that could answer: its asks do not count.
        best_item = next((match.similarity for position, match in query.asked.items()
                          if not self._index.other_kind(position, query)), 0.0)
        named = bool(ranked) and ranked[0].score - ranked[0].support_bonus >= OUTSIDE_WORDS_MAX
        if ranked and self._index.told_apart(ranked[0].item.name, topic.topic, query, rival_said=True):
            return False  # 老年人优待证 said: not the topic 退役军人优待证, however near its asks
        # 机动车驾驶证到期换证: the message names the topic outright; an item's asks that share its
        # other words (拖拉机驾驶证期满换证) do not outweigh that.
        said = name_variants(topic.topic)[0] in query.text
        return match.similarity >= OUTSIDE_SUPPORT_MIN and (said or match.similarity >= best_item + OUTSIDE_MARGIN) \
            and not named

    def _nearest_asked(self, query: Query, ranked: Sequence[Scored], tied: list[Scored]) -> Scored | None:
        """The item whose asks are nearest the message, when it is not among the choices and its asks
        are clearly nearer than the winner's: the words and the asks disagree."""
        if not query.asked or len(query.text) < SHORT_MESSAGE:
            return None
        position = next(iter(query.asked))  # best supported first
        support = query.asked[position].similarity
        nearest = self._index.items[position]
        if support < ASK_MIN or any(s.item is nearest for s in tied) or self._index.other_kind(position, query):
            return None
        if self._other_situation(query, nearest) and len(query.text) < DISAGREE_LONG:
            return None  # 个体户营业执照注销要多久: the asks of 设立登记 share every other word
        if not self._index.has_asks(tied[0].item):
            return None  # no asks of the winner to compare with: its words alone speak for it
        gap = DISAGREE_LONG_GAP if len(query.text) >= DISAGREE_LONG else DISAGREE_GAP
        if support - tied[0].support < gap:
            return None
        return next((s for s in ranked if s.item is nearest), None) or self._index.score(position, query)

    def _asks_overrule(self, query: Query, best: Scored, nearest_asked: Scored) -> bool:
        """Far nearer asks overrule words that do not name the winner (老板拖了工资还把我开了: the words name
        失业登记 through a synonym, the asks 劳动人事争议仲裁申请): unless the message says the winner's
        name in its own words or is mostly made of it, or asks a situation the asks' item is not for."""
        said = LCSseq.similarity(name_variants(best.item.name)[0], query.text)
        _, next_nearest = query.nearest_supports()  # the nearest is nearest_asked's own support
        return (nearest_asked.support - best.support >= ASKS_OVERRULE_GAP
                and nearest_asked.support - next_nearest >= OVERRULER_LEAD
                and nearest_asked.name_coverage < best.name_coverage - OVERRULER_NAME_MARGIN
                and not self._other_situation(query, nearest_asked.item)
                and best.name_coverage < OVERRULE_NAME_MAX and said < OVERRULE_SAID_SHARE * len(query.text))

    def _other_situation(self, query: Query, item: Item) -> bool:
        return for_other_situation(self._index.situations_of(item), query.situations)

    def _by_asks(self, query: Query) -> list[Scored]:
        """The items whose asks are near a message that names none of them in its own words
        (笔试面试都过了 → 教师资格认定), nearest first; none when they are not near enough.
        A short message gets at most one, and only by a wide margin."""
        if not query.asked:
            return []
        nearest, next_nearest = query.nearest_supports()
        outside = query.outside_ask[1].similarity if query.outside_ask else 0.0
        if len(query.text) < SHORT_MESSAGE:
            runner_up = max(next_nearest, outside)
            if nearest < ASKS_ALONE_SHORT_MIN or runner_up > nearest - ASKS_ALONE_SHORT_MARGIN:
                return []
            position = next(iter(query.asked))
            return [] if self._index.other_kind(position, query) else [self._index.score(position, query)]
        if nearest < ASKS_ALONE_MIN or outside > nearest - ASKS_ALONE_MARGIN:
            return []
        close = [p for p, m in query.asked.items() if m.similarity >= nearest - ASKS_ALONE_TIE]
        return [self._index.score(p, query) for p in close[:MAX_CHOICES] if not self._index.other_kind(p, query)]

    def decide(self, query: Query, ranked: Sequence[Scored], top: int = MAX_CHOICES) -> MatchResult:
        """Answer, clarify or unknown, from the message as read and its candidates best first."""
        shown = tuple(ranked[: max(top, MAX_CHOICES)])
        weak = not ranked or ranked[0].query_coverage < MIN_QUERY_COVERAGE or ranked[0].score < MIN_SCORE
        # 跟娃儿在重庆长住，医保备案: a place is expected by an item for people away among the best.
        elsewhere = self._index.elsewhere.about(query.text) and not (not weak and any(
            serves_between_places(s.item.name) for s in ranked[:MAX_CHOICES]
            if s.score >= ranked[0].score - UNSURE_MARGIN))
        declined = query.outside_ask if self._declines(query, ranked) else None
        if weak and not elsewhere and not declined and not any(unit.foreign for unit in query.units):
            by_asks = self._by_asks(query)
            if by_asks:
                decision = Decision.ANSWER if len(by_asks) == 1 else Decision.CLARIFY
                return MatchResult(decision, query.field, tuple(by_asks), shown, corrected=query.text, inferred=True)
        if weak or elsewhere or declined:
            outside = [unit.text for unit in query.units if unit.foreign]
            if elsewhere:
                outside += self._index.elsewhere.places_in(query.text)
            about_center = declined is not None and declined[0].about_center
            if declined and (about_center or not outside):
                outside = [declined[0].topic]
            if not outside and any(self._index.other_kind(p, query) for p in list(query.asked)[:MAX_CHOICES]):
                outside = list(kind_words(query.text))  # 储蓄卡, near 社会保障卡's asks: the bank's
            return MatchResult(Decision.UNKNOWN, query.field, (), shown, corrected=query.text,
                               about_center=about_center,
                               outside=tuple(dict.fromkeys(outside)))
        best = ranked[0]
        # A weak winner is no winner: below SURE_SCORE, every candidate near it is offered instead.
        margin = TIE_MARGIN if best.score >= SURE_SCORE else UNSURE_MARGIN
        tied = [s for s in ranked if s.score >= best.score - margin and s.query_coverage >= MIN_QUERY_COVERAGE]
        nearest_asked = self._nearest_asked(query, ranked, tied)
        if nearest_asked is not None:
            # Offered beside the winner, or answered instead when its asks are far nearer (_asks_overrule).
            if self._asks_overrule(query, best, nearest_asked):
                return MatchResult(Decision.ANSWER, query.field, (nearest_asked,), shown, corrected=query.text,
                                   inferred=True)
            tied = [*tied[: MAX_CHOICES - 1], nearest_asked]
        if len(tied) == 1:
            return MatchResult(Decision.ANSWER, query.field, (best,), shown, corrected=query.text)
        mains = {s.item.main_item for s in tied}
        main_item = next(iter(mains)) if len(mains) == 1 and "" not in mains else ""
        new_one = next((s for s in tied if "new" in self._index.situations_of(s.item)), None)
        if main_item and not query.situations and new_one is not None:
            # Situations of one thing, none named: the new one is meant; the answer offers the rest.
            return MatchResult(Decision.ANSWER, query.field, (new_one,), shown, corrected=query.text)
        if not main_item:
            # Different things fit: offer each main item once (its best situation); the answer
            # then offers that item's other situations by number.
            seen: set[str] = set()
            kept = []
            for scored in tied:
                if scored.item.main_item in seen:
                    continue
                if scored.item.main_item:
                    seen.add(scored.item.main_item)
                kept.append(scored)
            tied = kept
        return MatchResult(Decision.CLARIFY, query.field, tuple(tied[:MAX_CHOICES]), shown,
                           main_item=main_item, corrected=query.text)
