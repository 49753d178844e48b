"""Other places: a district center serves its own district, not 北京 or 上海 (上海的社保卡在哪补)."""

from __future__ import annotations

import re

# Places whose services a district center does not provide. A message about one of them, with no word
# tying it back here (回来, 这边, the center's own place …), is out of scope: 上海的社保卡在哪补.
OTHER_PLACES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建",
    "江西", "山东", "河南", "湖北", "湖南", "广东", "广西", "海南", "贵州", "云南", "西藏", "陕西", "甘肃",
    "青海", "宁夏", "新疆", "台湾", "香港", "澳门", "成都", "深圳", "广州", "杭州", "南京", "武汉", "西安", "长沙",
    "郑州", "苏州", "东莞", "昆明", "贵阳", "南充", "达州", "遂宁", "绵阳", "德阳", "宜宾", "泸州", "乐山", "眉山",
    "内江", "自贡", "资阳", "巴中", "雅安", "攀枝花", "渝中", "渝北",
)
ELSEWHERE_MAX_LENGTH = 30  # a longer message naming a place is telling its story, see Elsewhere.about
# 去深圳, 搬到海南, 拉到重庆去卖: a place one goes to from here. The service is wanted here, before leaving
# (异地居住备案, 跨区域涉税报告, 动物检疫证), so such a place is no sign the message is about elsewhere.
GOING_TO = ("去", "到", "往")
# 在成都打工 tells where someone lives or works, 在成都办 or 在成都哪里 where the service is wanted.
SERVED_THERE = ("办", "哪", "补", "领", "换")
SERVED_REACH = 3
# An item whose name holds one of these serves people between here and another place (常驻异地工作人员
#备案, 跨省通办, 关系转移接续): a message naming another place is just what it expects.
BETWEEN_PLACES = ("异地", "跨省", "省外", "外地", "跨区域", "转移", "转入", "转出", "外出",
                  "转诊", "出境", "入境", "回国", "回乡")
TIES_HERE = ("回来", "回老家", "回到", "转回", "迁回", "这边", "这里", "本地", "你们", "我们这", "转到", "迁到",
              "迁入", "过来", "转入", "迁来", "落户到", "户口在")


class Elsewhere:
    """Tells a message about another place's services from one about this center's, whose name and
    address give its own place names (never counted as elsewhere)."""

    def __init__(self, center_name_and_address: str) -> None:
        self.home = home_places(center_name_and_address)
        self.other_places = tuple(p for p in OTHER_PLACES if not any(p in h or h in p for h in self.home))

    def places_in(self, text: str) -> list[str]:
        return [place for place in self.other_places if place in text]

    def _not_where_served(self, text: str, place: str) -> bool:
        """Every mention of the place is where someone goes from here (去深圳, 搬到海南), or where
        someone lives or works (在深圳打工, 跟儿女在海南住) rather than where a service is done (在成都办)."""
        for found in re.finditer(re.escape(place), text):
            start, after = found.start(), text[found.end() : found.end() + SERVED_REACH]
            gone_to = start > 0 and text[start - 1] in GOING_TO
            lives_there = start > 0 and text[start - 1] == "在" and not any(word in after for word in SERVED_THERE)
            if not (gone_to or lives_there):
                return False
        return True

    def about(self, text: str) -> bool:
        """True when the message is about another place's services (北京积分落户, 上海的社保卡).

        A long message that names a place is telling its story (去年在陕西被查, 在深圳打工): the
        place is background there, not where the service is wanted."""
        if len(text) > ELSEWHERE_MAX_LENGTH:
            return False
        places = [place for place in self.places_in(text) if not self._not_where_served(text, place)]
        return bool(places) and not any(word in text for word in TIES_HERE + self.home)


def serves_between_places(item_name: str) -> bool:
    return any(word in item_name for word in BETWEEN_PLACES)


def home_places(text: str) -> tuple[str, ...]:
    """The center's own place names, from its name and address: 广安区政务服务中心 → 广安区, 广安."""
    places: list[str] = []
    for match in re.finditer(r"([\u4e00-\u9fff]{2,4}?)(省|市|区|县)", text):
        stem = match.group(1)
        for prefix in ("四川", "四川省"):
            stem = stem.removeprefix(prefix)
        if len(stem) >= 2:
            places += [stem + match.group(2), stem]
    return tuple(dict.fromkeys(places))
