"""The one place that decides what guidebot says. Channel-independent: Inbound in, Replies out.

A conversation's state (the item last talked about, pending numbered choices, a case lookup waiting
for its second factor) is loaded from and saved to a `StateStore` on every message, so any process
can answer the next one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from rapidfuzz import fuzz

from guidebot.dialog.render import center_info, render_faq_answer, render_item
from guidebot.dialog.replies import Choice, Choices, Inbound, Reply, Text
from guidebot.knowledge.catalog import Item
from guidebot.knowledge.fields import FIELD_LABELS, Field, detect_field
from guidebot.knowledge.matching import CatalogIndex, Decision, MatchResult
from guidebot.knowledge.normalize import compact, normalize

MAX_MESSAGE_CHARS = 2000
MAX_SIBLINGS_OFFERED = 5
SECTION_SHORTCUTS = (Field.MATERIALS, Field.FEE, Field.TIME_LIMIT, Field.LOCATION, Field.PROCEDURE)


class StateStore(Protocol):
    def load_state(self, channel: str, sender: str) -> dict[str, Any]: ...

    def save_state(self, channel: str, sender: str, state: dict[str, Any]) -> None: ...

    def log_query(self, channel: str, sender: str, text: str, decision: str,
                  item_code: str | None = None, field: str | None = None) -> None: ...


class MemoryStore:
    """A StateStore in memory, for one-shot questions and tests."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], dict[str, Any]] = {}
        self.logged: list[dict[str, Any]] = []

    def load_state(self, channel: str, sender: str) -> dict[str, Any]:
        return dict(self.states.get((channel, sender), {}))

    def save_state(self, channel: str, sender: str, state: dict[str, Any]) -> None:
        self.states[(channel, sender)] = dict(state)

    def log_query(self, channel: str, sender: str, text: str, decision: str,
                  item_code: str | None = None, field: str | None = None) -> None:
        self.logged.append({"channel": channel, "text": text, "decision": decision, "item_code": item_code,
                            "field": field})


@dataclass
class ConversationState:
    last_item: str = ""
    choices: list[str] = field(default_factory=list)
    choice_field: str = Field.ALL.value
    flow: dict[str, Any] = field(default_factory=dict)  # owned by a sub-dialog (case lookup …)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ConversationState:
        known = {k: raw[k] for k in ("last_item", "choices", "choice_field", "flow") if k in raw}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SubDialog(Protocol):
    """A dialog that may take a message before item matching (case lookup, subscriptions …)."""

    def handle(self, inbound: Inbound, text: str, state: ConversationState) -> list[Reply] | None: ...


_HELP = re.compile(r"^(/help|/帮助|帮助|help|菜单|功能|怎么用|使用说明|你能做什么|你会什么|能做什么)$")
_START = re.compile(r"^/start\b")
_GREETING = re.compile(r"^(你好|您好|你们好|hi|hello|hey|哈喽|嗨|在吗|在不在|有人吗|早上好|上午好|中午好|下午好|晚上好"
                       r"|早|喂)+[啊呀吗哈嘛哦]*$")
_THANKS = re.compile(r"^(谢谢|谢谢你|谢谢您|感谢|多谢|谢了|thanks|thankyou|thx|好的|好|ok|okay|明白了|知道了|收到|"
                     r"懂了|了解|要得|好嘞|行|可以了|没问题|再见|拜拜)+[啊呀了哈哦的]*$")
_CENTER = re.compile(r"(中心|大厅|你们)(的)?(地址|在哪|位置|怎么走|电话|几点|上班|下班|开门|关门|周末|停车)"
                     r"|(上班|下班|办公|开门|营业)时间|几点(上班|下班|开门|关门)|周末(上班|开门|办公|能办)|停车"
                     r"|投诉电话|咨询电话|中心电话|政务中心在哪|服务中心在哪|地址在哪")
_NUMBER = re.compile(r"^(?:第)?(\d{1,2})(?:个|项|号)?$")


def distinguishing_labels(names: list[str]) -> list[str]:
    """Labels that tell sibling items apart: each name without what all of them share.

    食品经营许可（新办）/（变更）/（注销） → 新办 / 变更 / 注销. Falls back to the full names when
    stripping would leave a label empty or two labels equal.
    """
    if len(names) < 2:
        return list(names)
    original = list(names)
    names = [n.replace("(", "（").replace(")", "）") for n in names]
    prefix = 0
    while all(len(n) > prefix and n[prefix] == names[0][prefix] for n in names):
        prefix += 1
    suffix = 0
    while all(len(n) - prefix > suffix and n[-1 - suffix] == names[0][-1 - suffix] for n in names):
        suffix += 1
    labels = [n[prefix : len(n) - suffix].strip("（）()、 ") for n in names]
    if any(len(label) < 2 for label in labels) or len(set(labels)) != len(labels):
        return original
    return labels


class DialogEngine:
    def __init__(self, index: CatalogIndex, store: StateStore, sub_dialogs: list[SubDialog] | None = None,
                 on_answer: Callable[[Inbound, Item], list[Reply]] | None = None) -> None:
        self.index = index
        self.catalog = index.catalog
        self.store = store
        self.sub_dialogs = sub_dialogs or []
        self.on_answer = on_answer

    # ------------------------------------------------------------------ entry point

    def handle(self, inbound: Inbound) -> list[Reply]:
        raw = inbound.text or ""
        text = normalize(raw[: MAX_MESSAGE_CHARS * 2])
        state = ConversationState.from_dict(self.store.load_state(inbound.channel, inbound.sender))
        replies = self._respond(inbound, raw, text, state)
        self.store.save_state(inbound.channel, inbound.sender, state.to_dict())
        return replies

    def _respond(self, inbound: Inbound, raw: str, text: str, state: ConversationState) -> list[Reply]:
        if not text:
            return [Reply.text("您好，请用文字说说您要办的事，例如“办身份证要带什么”“个体户营业执照怎么办”。"
                               "回复“帮助”查看我能做什么。")]
        key = text.replace(" ", "")
        starting = bool(_START.match(raw.strip()))
        if starting or _HELP.match(key) or _HELP.match(raw.strip().lower()):
            return [self._help(welcome=starting)]
        for sub_dialog in self.sub_dialogs:
            replies = sub_dialog.handle(inbound, text, state)
            if replies is not None:
                return replies
        number = _NUMBER.match(key)
        if number and state.choices:
            return self._choose(int(number.group(1)), state, inbound)
        if _GREETING.match(key):
            return [self._help(welcome=True)]
        if _THANKS.match(key):
            return [Reply.text("不客气！还有其他要办的事，随时问我。")]
        if number:
            return [Reply.text("请直接告诉我您要办的事，例如“结婚登记要带什么”。查询办件进度请发送“查件 办件编号”。")]
        long_note = len(raw) > MAX_MESSAGE_CHARS
        result = self.index.match(text)
        if result.decision is Decision.UNKNOWN:
            follow_up = self._follow_up(text, state)
            if follow_up is not None:
                return follow_up
        if result.decision is Decision.UNKNOWN:
            faq = self._center_faq(key)
            if faq is not None:
                return [Reply.text(faq)]
            if _CENTER.search(key):
                return [Reply.text(center_info(self.catalog.center))]
        if result.decision is Decision.ANSWER:
            item = result.choices[0].item
            self._log(inbound, raw, result, item.code)
            replies = self._answer(item, result.field, state, inbound, question=key)
            if result.inferred:
                # Read from the story, not named: say so, so a wrong guess is corrected, not followed.
                replies.insert(0, Reply.text(f"按您说的情况，要办的应是“{item.name}”（如果不是，请换个说法再问）："))
            return replies
        if result.decision is Decision.CLARIFY:
            self._log(inbound, raw, result, None)
            return [self._clarify(result, state)]
        self._log(inbound, raw, result, None)
        if result.about_center:
            return [self._feedback(result.outside)]
        return [self._unknown(long_note, result.outside)]

    # ------------------------------------------------------------------ pieces

    def _help(self, welcome: bool) -> Reply:
        center = self.catalog.center
        lines = [f"您好！我是{center.name}的办事指南助手。"] if welcome else []
        lines += [
            "您可以这样问我：",
            "· 办身份证要带什么材料？",
            "· 开个小饭馆要办什么证？",
            "· 结婚登记收费吗？要多久？",
            "· 查件 + 办件编号：查询办理进度",
            f"中心电话 {center.phone}，办公时间 {center.hours}",
        ]
        return Reply.text(*lines)

    def _follow_up(self, text: str, state: ConversationState) -> list[Reply] | None:
        if not state.last_item:
            return None
        item = self.catalog.get(state.last_item)
        field_asked = detect_field(text)
        if item is None or field_asked is Field.ALL:
            return None
        return [self._item_reply(item, field_asked)]

    def _answer(self, item: Item, field_asked: Field, state: ConversationState, inbound: Inbound,
                question: str = "") -> list[Reply]:
        state.last_item = item.code
        state.choices = []
        replies = [self._item_reply(item, field_asked, question)]
        siblings = self.catalog.siblings(item)[: MAX_SIBLINGS_OFFERED]
        if siblings:
            # The answer is the situation the message pointed to; the others are one digit away.
            labels = distinguishing_labels([item.name, *(s.name for s in siblings)])[1:]
            state.choices = [s.code for s in siblings]
            state.choice_field = field_asked.value
            options = tuple(Choice(label, str(i)) for i, label in enumerate(labels, 1))
            replies.append(Reply((Choices("如果您办的是其他情况，请回复数字：", options),)))
        if self.on_answer is not None and not state.choices:
            # Never two numbered menus at once: "1" must mean one thing (a situation, or a rating).
            replies.extend(self.on_answer(inbound, item))
        return replies

    def _item_reply(self, item: Item, field_asked: Field, question: str = "") -> Reply:
        text = render_item(item, field_asked, self.catalog.center)
        faq = _matching_faq(item, question) if question else None
        if faq:
            text = faq + "\n\n" + text
        parts: list[Text | Choices] = [Text(text)]
        if item.has_guide:
            shortcuts = tuple(
                Choice(FIELD_LABELS[f], FIELD_LABELS[f]) for f in SECTION_SHORTCUTS if f is not field_asked
            )
            parts.append(Choices("还想了解：", shortcuts, numbered=False))
        return Reply(tuple(parts))

    def _clarify(self, result: MatchResult, state: ConversationState) -> Reply:
        items = [scored.item for scored in result.choices]
        state.choices = [item.code for item in items]
        state.choice_field = result.field.value
        if result.main_item:
            labels = distinguishing_labels([item.name for item in items])
            prompt = f"“{result.main_item}”分几种情况，请问您是哪一种？回复数字即可："
        else:
            labels = [item.name for item in items]
            prompt = "找到几个相近的事项，请问您要办的是哪一个？回复数字即可："
        options = tuple(Choice(label, str(i)) for i, label in enumerate(labels, 1))
        return Reply((Choices(prompt, options),))

    def _choose(self, number: int, state: ConversationState, inbound: Inbound) -> list[Reply]:
        if not 1 <= number <= len(state.choices):
            return [Reply.text(f"请回复 1 到 {len(state.choices)} 之间的数字，或直接描述您要办的事。")]
        item = self.catalog.get(state.choices[number - 1])
        if item is None:
            state.choices = []
            return [Reply.text("事项目录已更新，请重新描述您要办的事。")]
        return self._answer(item, Field(state.choice_field), state, inbound)

    def _unknown(self, long_note: bool, outside: tuple[str, ...] = ()) -> Reply:
        center = self.catalog.center
        lines = []
        if long_note:
            lines.append(f"您的消息较长（超过 {MAX_MESSAGE_CHARS} 字），我只读了开头部分。")
        if outside:
            # Say what is out of reach, so the citizen goes to the right place rather than rephrasing.
            named = "、".join(f"“{word}”" for word in outside)
            lines.append(f"抱歉，{named}的事不在{center.name}的办理事项里，请向相关单位或当地政务服务部门咨询。")
        else:
            lines += [
                "抱歉，我没有找到与您的问题对应的办理事项。",
                "您可以换个说法，说说要办什么事，例如“办身份证要带什么”；",
            ]
        lines += [
            f"{'如有疑问，' if outside else '也可以'}致电中心咨询：{center.phone}（{center.hours}）。",
            "您的问题已记录，工作人员会据此完善服务。",
        ]
        return Reply.text(*lines)

    def _feedback(self, topics: tuple[str, ...]) -> Reply:
        """About the center itself (a clerk's manner, a phone nobody answers, the bot): no office to send
        the citizen to — the center's own staff hear it, and its complaint line is at hand."""
        center = self.catalog.center
        about = "、".join(f"“{topic}”" for topic in topics)
        lines = [f"关于{about}：谢谢您告诉我们。这件事我答不了，但您的话已记录，会转给{center.name}的工作人员。"]
        if center.complaint_phone:
            lines.append(f"如需当面反映或投诉，请拨打投诉电话 {center.complaint_phone}；"
                         f"咨询电话 {center.phone}（{center.hours}）。")
        else:
            lines.append(f"如需直接反映，请致电 {center.phone}（{center.hours}）。")
        return Reply.text(*lines)

    def _center_faq(self, key: str) -> str | None:
        best, best_score = None, 0.0
        for faq in self.catalog.center.faqs:
            score = fuzz.ratio(compact(faq.question), key)
            if score > best_score:
                best, best_score = faq, score
        if best is not None and best_score >= 75:
            return render_faq_answer(best.question, best.answer)
        return None

    def _log(self, inbound: Inbound, raw: str, result: MatchResult, item_code: str | None) -> None:
        self.store.log_query(inbound.channel, inbound.sender, raw[:500], result.decision.value, item_code,
                             result.field.value)


def _matching_faq(item: Item, question: str) -> str | None:
    best, best_score = None, 0.0
    for faq in item.faqs:
        score = fuzz.partial_ratio(compact(faq.question), question)
        if score > best_score:
            best, best_score = faq, score
    if best is not None and best_score >= 85 and len(question) >= 6:
        return render_faq_answer(best.question, best.answer)
    return None
