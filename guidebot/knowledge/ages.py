"""Ages: the age an item is for (满十八岁, 未满十八岁, 80周岁以上) and the ages a message gives (娃儿今年十岁).

公民民族成份确认和变更 is two items, one for adults and one for minors, with the same words but for the
age; a message that gives an age decides between them."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUMBER = r"[0-9]{1,3}|[零一二两三四五六七八九十]{1,3}"
_NAME_AGE = re.compile(rf"(未满|满)?({_NUMBER})周?岁(以上|以下)?")
_SAID_AGE = re.compile(rf"({_NUMBER})(?:周岁|岁)")
OLDEST = 150
ADULT = 18
# Words that give an age without a number: 未成年 holds 成年, so it is looked for first.
_MINOR_WORDS = ("未成年",)
_ADULT_WORDS = ("成年了", "已成年", "成年人", "已经成年")


def _number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if "十" not in text:
        return _DIGITS.get(text) if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    if (tens and tens not in _DIGITS) or (ones and ones not in _DIGITS):
        return None
    return _DIGITS.get(tens, 1) * 10 + _DIGITS.get(ones, 0)


def age_range(name: str) -> tuple[int, int] | None:
    """The ages an item name is for, both ends included: 未满十八岁 → (0, 17), 80周岁以上 → (80, OLDEST)."""
    found = _NAME_AGE.search(name)
    if found is None or (number := _number(found.group(2))) is None:
        return None
    if found.group(1) == "未满":
        return 0, number - 1
    if found.group(3) == "以下":
        return 0, number
    if found.group(1) == "满" or found.group(3) == "以上":
        return number, OLDEST
    return None


def ages_said(text: str) -> tuple[int, ...]:
    """The ages a message gives: 娃儿今年十岁 → (10,); 成年了 → (18,); 未成年 → (17,)."""
    ages = [n for found in _SAID_AGE.finditer(text) if (n := _number(found.group(1))) is not None and n <= OLDEST]
    rest = text
    for word in _MINOR_WORDS:
        if word in rest:
            ages.append(ADULT - 1)
            rest = rest.replace(word, " ")
    if any(word in rest for word in _ADULT_WORDS):
        ages.append(ADULT)
    return tuple(ages)


class AgeSiblings:
    """Items that are one thing for different ages (the same name but for its age): for a message that
    gives ages, the ones whose age none of them fits."""

    def __init__(self, names: Sequence[str]) -> None:
        ranges = [age_range(name) for name in names]
        groups: dict[str, list[int]] = defaultdict(list)
        for position, (name, span) in enumerate(zip(names, ranges, strict=True)):
            if span is not None:
                groups[_NAME_AGE.sub("", name)].append(position)
        self._ranges = {position: ranges[position]
                        for members in groups.values() if len(members) > 1 for position in members}

    def too_young_or_old(self, position: int, ages: Sequence[int]) -> bool:
        span = self._ranges.get(position)
        return bool(ages) and span is not None and not any(span[0] <= age <= span[1] for age in ages)
