"""Things of one sort that citizens tell apart by name: an item for one is not an item for another
(a car and a tractor, a savings card and a social security card, medical insurance and a pension,
a marriage and a divorce).

拖拉机驾驶证期满换证 shares every word but one with 汽车驾驶证到期了要换证, and 社会保障卡密码重置 with
建行的储蓄卡密码忘了 — the message names another kind of the same thing, which this center may not
handle at all (cars are the 车管所's, bank cards the bank's)."""

from __future__ import annotations

# Per sort of thing: each kind, and the words that name it. 机动车 is left out: the law counts a tractor
# as one, citizens mean a car by it, and the out-of-scope topic 机动车驾驶证 is named outright anyway.
KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "vehicle": {
        "tractor": ("拖拉机", "收割机", "农机"),
        "car": ("汽车", "小车", "轿车", "私家车", "摩托车", "摩托", "电动车", "电瓶车"),
    },
    "card": {
        "social_security_card": ("社保卡", "社会保障卡", "医保卡"),
        # 行卡 and 行的卡: 农行卡, 建行卡, 农商行的卡 — a bank's card by the bank's name.
        "bank_card": ("银行卡", "储蓄卡", "信用卡", "工资卡", "借记卡", "存折", "行卡", "行的卡", "信用社的卡",
                      "邮政卡"),
    },
    "insurance": {
        "medical": ("医保", "医疗保险"),
        "pension": ("养老保险", "养老金", "退休金"),
        "unemployment": ("失业保险", "失业金"),
        "injury": ("工伤",),
    },
    "marriage": {
        "marry": ("结婚",),
        "divorce": ("离婚",),
    },
}


# Per sort: words that name a thing of that sort without saying its kind, and the kind they then mean.
# 驾照到期了, 买了新车要上牌: citizens mean a car; a tractor's papers are asked for by the tractor's name.
UNNAMED_KIND: dict[str, tuple[tuple[str, ...], str]] = {
    "vehicle": (("驾照", "驾驶证", "上牌", "车牌", "号牌", "行驶证"), "car"),
}


def _said(sort: str, text: str) -> list[tuple[str, str]]:
    """The (kind, word) pairs of one sort a text says; when it names no kind of the sort, those its
    words for an unnamed one mean (驾照 → car)."""
    said = [(kind, word) for kind, words in KINDS[sort].items() for word in words if word in text]
    if not said and sort in UNNAMED_KIND:
        words, kind = UNNAMED_KIND[sort]
        said = [(kind, word) for word in words if word in text]
    return said


def kinds_in(text: str) -> frozenset[tuple[str, str]]:
    """The (sort, kind) pairs a text names, or means by naming a thing of the sort without its kind."""
    return frozenset((sort, kind) for sort in KINDS for kind, _ in _said(sort, text))


# Sorts whose every kind is a service of the center: a message naming one is never about another office's.
HANDLED_HERE = frozenset({"insurance", "marriage"})


def kind_words(text: str) -> tuple[str, ...]:
    """The words of a text that name a kind another office may handle (储蓄卡, 小车, or 驾照 where no
    kind is named), longest first where one holds another."""
    found = [word for sort in KINDS if sort not in HANDLED_HERE for _, word in _said(sort, text)]
    return tuple(w for w in found if not any(w != other and w in other for other in found))


def conflicts(item_kinds: frozenset[tuple[str, str]], message_kinds: frozenset[tuple[str, str]]) -> bool:
    """The message names a kind of some sort and the item only other kinds of that sort."""
    for sort in {sort for sort, _ in message_kinds}:
        of_item = {kind for s, kind in item_kinds if s == sort}
        if of_item and not of_item & {kind for s, kind in message_kinds if s == sort}:
            return True
    return False
