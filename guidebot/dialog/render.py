"""An item's guide as plain Chinese text: the whole 一次性告知, or one field of it."""

from __future__ import annotations

from guidebot.knowledge.catalog import Center, Item
from guidebot.knowledge.fields import FIELD_LABELS, Field, asks_about

SAMPLE_NOTE = "（以上为示例指南，请以窗口核实为准）"


def _materials(item: Item) -> list[str]:
    if not item.materials:
        return []
    lines = ["【申请材料】（请一次带齐）"]
    for number, material in enumerate(item.materials, 1):
        details = [d for d in (material.form, f"{material.copies}份" if material.copies else "") if d]
        line = f"{number}. {material.name}"
        if details:
            line += f"（{'，'.join(details)}）"
        if material.note:
            line += f"：{material.note}"
        if material.form_url:
            line += f" 表格下载：{material.form_url}"
        lines.append(line)
    return lines


def _fee(item: Item) -> list[str]:
    if item.fee is None:
        return []
    text = "不收费" if item.fee.free else item.fee.amount
    if item.fee.basis:
        text += f"（依据：{item.fee.basis}）"
    return [f"【收费】{text}"]


def _time_limit(item: Item) -> list[str]:
    parts = []
    if item.legal_limit_days is not None:
        parts.append(f"法定 {item.legal_limit_days} 个工作日")
    if item.promised_limit_days is not None:
        parts.append("当场办结" if item.promised_limit_days == 0 else f"承诺 {item.promised_limit_days} 个工作日")
    if item.kind:
        parts.append(item.kind)
    return [f"【办理时限】{'，'.join(parts)}"] if parts else []


def _location(item: Item, center: Center) -> list[str]:
    lines = []
    place = "，".join(p for p in (item.window, item.location) if p)
    if place:
        lines.append(f"【办理地点】{place}")
    if item.department and not place:
        lines.append(f"【办理部门】{item.department}（在{center.name}相应窗口办理）")
    hours = item.hours or center.hours
    if hours:
        lines.append(f"【办理时间】{hours}")
    if item.phone:
        lines.append(f"【咨询电话】{item.phone}")
    if item.visits is not None:
        lines.append("【到现场次数】" + ("0 次（全程网办）" if item.visits == 0 else f"{item.visits} 次"))
    if item.window_completes is not None:
        lines.append("【办结方式】" + (
            "窗口受理即可办结" if item.window_completes else "窗口受理后转部门审批，办结后通知领取"
        ))
    return lines


def _listed(title: str, values: tuple[str, ...], numbered: bool = True) -> list[str]:
    if not values:
        return []
    if numbered and len(values) > 1:
        return [title] + [f"{i}. {v}" for i, v in enumerate(values, 1)]
    return [title + "".join(values)] if len(values) == 1 else [title, *values]


def _forms(item: Item) -> list[str]:
    forms = [m for m in item.materials if m.form_url]
    if not forms:
        return []
    return ["【表格下载】"] + [f"{m.name}：{m.form_url}" for m in forms]


def _online(item: Item) -> list[str]:
    return [f"【网上办理】{item.online_url}"] if item.online_url else []


def render_item(item: Item, field: Field, center: Center) -> str:
    """The guide for `item`: everything (一次性告知) for Field.ALL, else the field asked about."""
    header = f"【{item.name}】" + (f"{item.department}" if item.department else "")
    if not item.has_guide:
        return "\n".join([
            header,
            f"本事项{('由' + item.department + '办理') if item.department else '在本中心办理'}"
            + (f"（{item.type}）" if item.type else "") + "。",
            "目前还没有录入该事项的详细办事指南。为免您白跑，请先致电咨询需要的材料：",
            f"{center.name} {center.phone}" + (f"，办理时间 {center.hours}" if center.hours else ""),
        ])
    sections: dict[Field, list[str]] = {
        Field.MATERIALS: _materials(item),
        Field.FEE: _fee(item),
        Field.TIME_LIMIT: _time_limit(item),
        Field.LOCATION: _location(item, center),
        Field.CONDITIONS: _listed("【受理条件】", item.conditions),
        Field.PROCEDURE: _listed("【办理流程】", item.steps),
        Field.BASIS: _listed("【设定依据】", item.legal_basis),
        Field.FORMS: _forms(item),
        Field.ONLINE: _online(item),
    }
    if field is Field.ALL:
        order = (Field.MATERIALS, Field.FEE, Field.TIME_LIMIT, Field.LOCATION, Field.ONLINE)
        lines = [header] + [line for f in order for line in sections[f]]
        if not item.materials:
            lines.insert(1, f"【申请材料】尚未录入，为免白跑，请先致电 {center.phone} 咨询。")
        if item.conditions:
            lines.append("（如需了解受理条件、办理流程，可回复“条件”或“流程”）")
    else:
        body = sections[field]
        # The guide's own FAQs on the same point often say what the fields cannot (自然日, 加急 …).
        faqs = [render_faq_answer(f.question, f.answer) for f in item.faqs if asks_about(f.question, field)]
        if not body and not faqs:
            body = [_missing_field(field, item, center)]
        lines = [header, *body, *faqs]
    if item.sample:
        lines.append(SAMPLE_NOTE)
    return "\n".join(lines)


def _missing_field(field: Field, item: Item, center: Center) -> str:
    label = FIELD_LABELS[field]
    if field is Field.FORMS and item.materials:
        forms = [m.name for m in item.materials if "表" in m.name]
        listed = f"需要填写的表格：{'、'.join(forms)}。" if forms else ""
        return f"{listed}本事项暂未登记表格下载地址，申请表可在窗口现场领取填写。"
    if field is Field.ONLINE:
        return "本事项目前没有登记网上办理地址，请到窗口办理，或在四川政务服务网查询。"
    return f"该事项的“{label}”信息尚未录入，请致电 {center.phone} 咨询。"


def render_faq_answer(question: str, answer: str) -> str:
    return f"问：{question}\n答：{answer}"


def center_info(center: Center) -> str:
    lines = [f"【{center.name}】"]
    if center.address:
        lines.append(f"地址：{center.address}")
    if center.hours:
        lines.append(f"办公时间：{center.hours}")
    if center.phone:
        lines.append(f"咨询电话：{center.phone}")
    if center.complaint_phone:
        lines.append(f"投诉电话：{center.complaint_phone}")
    if center.parking:
        lines.append(f"停车：{center.parking}")
    return "\n".join(lines)
