"""Canonical case statuses and the mapping from the words approval-system exports use.

The stages follow the usual approval flow (受理 → 审查 → 办结), with the two side tracks an
applicant meets most: 待补正 (materials missing, the applicant must act) and the early exits
不予受理 and 已撤回.  已办结 has two explicit outcomes, 准予许可 and 不予许可; a plain 办结
without an outcome (e.g. for a registration or a public service item) stays ``COMPLETED``.

Import files write statuses in many ways; :func:`parse_status` maps them through
``STATUS_WORDS`` after removing spaces and unifying brackets.  An unknown word is an error,
never a guess: a wrong status would tell a citizen something untrue.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

__all__ = ["FINAL_STATUSES", "STATUS_WORDS", "CaseStatus", "parse_status"]


class CaseStatus(StrEnum):
    """A case's status; the value is the Chinese word stored in the database and shown."""

    ACCEPTED = "已受理"
    IN_REVIEW = "审查中"
    AWAITING_CORRECTION = "待补正"
    COMPLETED = "已办结"
    APPROVED = "准予许可"
    DENIED = "不予许可"
    NOT_ACCEPTED = "不予受理"
    WITHDRAWN = "已撤回"

    @property
    def is_final(self) -> bool:
        """True when nothing more will happen to the case (the time limit no longer runs)."""
        return self in FINAL_STATUSES

    @property
    def label(self) -> str:
        """The text shown to a citizen: the two outcomes are shown under 已办结."""
        if self in (CaseStatus.APPROVED, CaseStatus.DENIED):
            return f"已办结（{self.value}）"
        return self.value


FINAL_STATUSES: frozenset[CaseStatus] = frozenset(
    {
        CaseStatus.COMPLETED,
        CaseStatus.APPROVED,
        CaseStatus.DENIED,
        CaseStatus.NOT_ACCEPTED,
        CaseStatus.WITHDRAWN,
    }
)

# Import word → status.  Keys are normalised (see _normalise): no spaces, ASCII brackets.
STATUS_WORDS: dict[str, CaseStatus] = {
    # 已受理
    "受理": CaseStatus.ACCEPTED,
    "已受理": CaseStatus.ACCEPTED,
    "收件": CaseStatus.ACCEPTED,
    "已收件": CaseStatus.ACCEPTED,
    "接件": CaseStatus.ACCEPTED,
    "已接件": CaseStatus.ACCEPTED,
    # 审查中
    "审查": CaseStatus.IN_REVIEW,
    "审查中": CaseStatus.IN_REVIEW,
    "审核": CaseStatus.IN_REVIEW,
    "审核中": CaseStatus.IN_REVIEW,
    "审批中": CaseStatus.IN_REVIEW,
    "办理中": CaseStatus.IN_REVIEW,
    "在办": CaseStatus.IN_REVIEW,
    "承办": CaseStatus.IN_REVIEW,
    "核查中": CaseStatus.IN_REVIEW,
    "现场核查": CaseStatus.IN_REVIEW,
    # 待补正
    "补正": CaseStatus.AWAITING_CORRECTION,
    "待补正": CaseStatus.AWAITING_CORRECTION,
    "补齐补正": CaseStatus.AWAITING_CORRECTION,
    "补正中": CaseStatus.AWAITING_CORRECTION,
    "补件": CaseStatus.AWAITING_CORRECTION,
    "待补件": CaseStatus.AWAITING_CORRECTION,
    "补正告知": CaseStatus.AWAITING_CORRECTION,
    "一次性告知": CaseStatus.AWAITING_CORRECTION,
    # 已办结 (no outcome given)
    "办结": CaseStatus.COMPLETED,
    "已办结": CaseStatus.COMPLETED,
    "办毕": CaseStatus.COMPLETED,
    "已完成": CaseStatus.COMPLETED,
    # 已办结（准予许可）
    "准予许可": CaseStatus.APPROVED,
    "准予": CaseStatus.APPROVED,
    "许可": CaseStatus.APPROVED,
    "已办结(准予许可)": CaseStatus.APPROVED,
    "办结(准予许可)": CaseStatus.APPROVED,
    # 已办结（不予许可）
    "不予许可": CaseStatus.DENIED,
    "不准予许可": CaseStatus.DENIED,
    "不予批准": CaseStatus.DENIED,
    "已办结(不予许可)": CaseStatus.DENIED,
    "办结(不予许可)": CaseStatus.DENIED,
    # 不予受理
    "不予受理": CaseStatus.NOT_ACCEPTED,
    "不受理": CaseStatus.NOT_ACCEPTED,
    "退件": CaseStatus.NOT_ACCEPTED,
    # 已撤回
    "撤回": CaseStatus.WITHDRAWN,
    "已撤回": CaseStatus.WITHDRAWN,
    "撤件": CaseStatus.WITHDRAWN,
    "已撤件": CaseStatus.WITHDRAWN,
    "申请人撤回": CaseStatus.WITHDRAWN,
}


def _normalise(word: str) -> str:
    # NFKC turns full-width brackets into ASCII ones; spaces inside a word carry no meaning.
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", word))


def parse_status(word: str) -> CaseStatus | None:
    """The canonical status for an import word, or None when the word is not known."""
    return STATUS_WORDS.get(_normalise(word))
