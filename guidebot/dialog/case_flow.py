"""The case-progress conversation: number → second factor → status, and nothing for a stranger.

    citizen: 查件 / 我的办件进度          → asks for the case number
    citizen: SX20250926001（alone or in a sentence） → asks for the last 4 digits of phone or ID
    citizen: 5678                         → the case, or the same "could not verify" reply for an
                                            unknown number and a wrong factor (CaseLookup decides)
"""

from __future__ import annotations

import re
from typing import Any

from guidebot.cases.lookup import CaseLookup, Found, RateLimited, extract_factor, render_outcome
from guidebot.cases.numbers import find_case_number
from guidebot.dialog.engine import ConversationState
from guidebot.dialog.replies import Inbound, Reply
from guidebot.knowledge.catalog import Catalog

_ASK_FOR_CASE = re.compile(r"查件|查询办件|办件进度|办理进度|进度查询|查进度|查询进度|我的办件|办件查询|办到哪"
                           r"|审批进度|批下来没|办好了没|办好没|审核到哪")
_CANCEL = re.compile(r"^(取消|算了|不查了|退出查询)$")
_DIGITS_ONLY = re.compile(r"^[\dxX\s]+$")

ASK_NUMBER = "请发送办件编号（在受理回执单或短信通知上），例如：查件 SX20250926001。"
ASK_FACTOR = "为保护申请人信息，请回复申请人手机号码或身份证号码的后 4 位。"
ASK_FACTOR_AGAIN = "请回复 4 位数字（手机号或身份证号的后 4 位，身份证末位可以是 X）。回复“取消”可退出查询。"


class CaseFlow:
    """A SubDialog for DialogEngine: takes a message when it is about a case, else returns None."""

    def __init__(self, lookup: CaseLookup) -> None:
        self.lookup = lookup

    @classmethod
    def build(cls, store: Any, catalog: Catalog) -> CaseFlow:
        return cls(CaseLookup(store, catalog.item_name, catalog.promised_days))

    def handle(self, inbound: Inbound, text: str, state: ConversationState) -> list[Reply] | None:
        flow = state.flow.get("case") or {}
        compact = text.replace(" ", "")
        if flow and _CANCEL.match(compact):
            state.flow.pop("case", None)
            return [Reply.text("已退出办件查询。还有什么可以帮您？")]
        if flow.get("awaiting") == "factor":
            factor = extract_factor(inbound.text)
            if factor is not None:
                return self._verify(inbound, flow["number"], factor, state)
            if _DIGITS_ONLY.match(inbound.text.strip() or "x"):
                return [Reply.text(ASK_FACTOR_AGAIN)]
        number = find_case_number(inbound.text)
        if number is not None:
            return self._ask_factor(inbound, number, state)
        if _ASK_FOR_CASE.search(compact):
            limited = self.lookup.status(inbound.channel, inbound.sender)
            if limited is not None:
                return [Reply.text(*render_outcome(limited))]
            state.flow["case"] = {"awaiting": "number"}
            return [Reply.text(ASK_NUMBER)]
        if flow:
            state.flow.pop("case", None)  # the citizen moved on to something else
        return None

    def _ask_factor(self, inbound: Inbound, number: str, state: ConversationState) -> list[Reply]:
        limited = self.lookup.status(inbound.channel, inbound.sender)
        if limited is not None:
            state.flow.pop("case", None)
            return [Reply.text(*render_outcome(limited))]
        state.flow["case"] = {"awaiting": "factor", "number": number}
        return [Reply.text(f"收到办件编号 {number}。", ASK_FACTOR)]

    def _verify(self, inbound: Inbound, number: str, factor: str, state: ConversationState) -> list[Reply]:
        outcome = self.lookup.verify(inbound.channel, inbound.sender, number, factor)
        lines = render_outcome(outcome)
        if isinstance(outcome, Found | RateLimited):
            state.flow.pop("case", None)
        if isinstance(outcome, Found) and not outcome.view.status.is_final:
            from guidebot.outbox.subscriptions import offer_case_subscription

            lines.append(offer_case_subscription(state, outcome.view.case_no))
        return [Reply.text(*lines)]
