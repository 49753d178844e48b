"""Which part of an item's guide a message asks about (材料, 收费, 时限 …)."""

from __future__ import annotations

import re
from enum import StrEnum

from guidebot.knowledge.normalize import compact


class Field(StrEnum):
    ALL = "all"
    MATERIALS = "materials"
    FEE = "fee"
    TIME_LIMIT = "time_limit"
    LOCATION = "location"
    CONDITIONS = "conditions"
    PROCEDURE = "procedure"
    BASIS = "basis"
    FORMS = "forms"
    ONLINE = "online"


FIELD_LABELS: dict[Field, str] = {
    Field.ALL: "一次性告知",
    Field.MATERIALS: "材料",
    Field.FEE: "收费",
    Field.TIME_LIMIT: "时限",
    Field.LOCATION: "地点",
    Field.CONDITIONS: "条件",
    Field.PROCEDURE: "流程",
    Field.BASIS: "依据",
    Field.FORMS: "表格",
    Field.ONLINE: "网办",
}

# Patterns over normalized text. Order matters only for reporting: every field that fires is found,
# and the message asks about everything when two unrelated fields fire at once.
_FIELD_PATTERNS: dict[Field, str] = {
    Field.MATERIALS: r"材料|资料|证件|带(什么|啥|哪些|些|上|好|齐)|准备(什么|啥|哪些|些)|要(带|拿|准备)"
                     r"|需要(什么|啥|哪些)(东西|证)|提交(什么|啥|哪些)|(什么|啥子?|哪些)东西|复印件|原件|照片",
    Field.FEE: r"收费|费用|交费|付费|多少钱|几块钱|要钱|花钱|免费|钱吗|交钱|缴费|工本费|收钱"
               r"|(要|收|花)(多少|好多)钱|贵不贵|价格",
    Field.TIME_LIMIT: r"多久|多长时间|几天|多少天|好久|时限|期限|什么时候(能|可以)?(拿|领|办好|下来|出来)"
                      r"|啥时候(能|可以)?(拿|领|办好|下来|出来)|当天(能|可以)?(拿|办)|几个工作日|多快|要等|周期|办结时间|几时(能|可以)?(拿|领)",
    Field.LOCATION: r"在哪|哪里办|哪儿|哪个窗口|几号窗口|窗口|地址|地点|几楼|哪个部门|去哪|到哪|在什么地方|啥地方|位置",
    Field.CONDITIONS: r"条件|什么要求|有要求|能不能办|可以办吗|能办吗|符合|够不够|谁可以|哪些人|什么人",
    Field.PROCEDURE: r"流程|步骤|程序|手续|怎么走|先去|第一步|办理过程",
    Field.BASIS: r"依据|法律|法规|政策依据|哪条规定|根据什么|条例",
    Field.FORMS: r"表格|申请表|登记表|下载|模板|样表|范本|填表|表在哪",
    Field.ONLINE: r"网上办|网上能|网上可以|在线办|网办|手机上办|手机上能|app|小程序|不用跑|线上",
}
_COMPILED = {field: re.compile(pattern) for field, pattern in _FIELD_PATTERNS.items()}
FIELD_WORDS = re.compile("|".join(f"(?:{pattern})" for pattern in _FIELD_PATTERNS.values()))


def asks_about(text: str, field: Field) -> bool:
    """True when `text` (a question, an FAQ) is about `field`."""
    pattern = _COMPILED.get(field)
    return bool(pattern and pattern.search(compact(text)))


def detect_fields(text: str) -> list[Field]:
    """Every field the normalized message asks about, in the order they first appear."""
    found: list[tuple[int, Field]] = []
    for field, pattern in _COMPILED.items():
        match = pattern.search(text)
        if match:
            found.append((match.start(), field))
    return [field for _, field in sorted(found)]


def detect_field(text: str) -> Field:
    """The one field asked about, or ALL when none or several unrelated ones are asked.

    窗口 alone within a materials question is location noise (带什么去窗口), so a second field only
    widens the answer to ALL when it is not LOCATION.
    """
    fields = detect_fields(text)
    if not fields:
        return Field.ALL
    if Field.ONLINE in fields and Field.CONDITIONS in fields:
        fields.remove(Field.CONDITIONS)  # 网上能办吗 asks where, not whether
    if len(fields) == 1:
        return fields[0]
    if Field.FORMS in fields and Field.MATERIALS in fields:
        return Field.FORMS if len(fields) == 2 else Field.ALL
    meaningful = [field for field in fields if field is not Field.LOCATION]
    return meaningful[0] if len(meaningful) == 1 else Field.ALL
