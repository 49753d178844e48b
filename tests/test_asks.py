"""Example asks: reading the files, finding the nearest ask, switching out-of-scope topics off."""

from __future__ import annotations

import pytest

from guidebot.knowledge.asks import AskIndex, ItemAsks, OutsideTopic, read_item_asks, read_outside_topics
from guidebot.knowledge.importer import CatalogError

NAMES = ["食品经营许可（新办）", "食品经营许可（注销）", "拖拉机和联合收割机驾驶证核发", "居民身份证换领"]
ASKS = [
    ItemAsks("食品经营许可（新办）", ("想开个小饭馆要办啥证", "开火锅店要啥手续")),
    ItemAsks("食品经营许可（注销）", ("饭馆不开了证咋个退", "火锅店关门了许可证要注销")),
    ItemAsks("拖拉机和联合收割机驾驶证核发", ("开拖拉机要考证不",)),
    ItemAsks("不在这个目录里的事项", ("这条不会被用到",)),
]
OUTSIDE = [
    OutsideTopic("机动车驾驶证", ("机动车驾驶证",), ("小车驾驶证到期了去哪换", "驾照扣满分了咋个办")),
    OutsideTopic("护照", ("护照",), ("出国旅游要办护照",)),
]


def test_the_nearest_ask_names_its_item() -> None:
    index = AskIndex(NAMES, ASKS, OUTSIDE)
    found = index.search("我想开个小饭馆要办什么证")
    best_first = list(found.items)
    assert NAMES[best_first[0]] == "食品经营许可（新办）"
    assert found.items[best_first[0]].ask == "想开个小饭馆要办啥证"
    assert found.outside is None or found.outside[1].similarity < found.items[best_first[0]].similarity
    closing = index.search("饭馆不想开了证要退")
    assert NAMES[next(iter(closing.items))] == "食品经营许可（注销）"


def test_an_ask_about_what_the_center_does_not_do_is_found_with_its_topic() -> None:
    index = AskIndex(NAMES, ASKS, OUTSIDE)
    found = index.search("小车驾驶证快到期了在哪换")
    assert found.outside is not None and found.outside[0].topic == "机动车驾驶证"
    assert found.outside[1].similarity > max((m.similarity for m in found.items.values()), default=0.0)


def test_a_topic_switches_off_when_the_catalog_names_it() -> None:
    index = AskIndex([*NAMES, "机动车驾驶证换证"], ASKS, OUTSIDE)
    outside = index.search("小车驾驶证快到期了在哪换").outside
    assert outside is None or outside[0].topic != "机动车驾驶证"


def test_asks_of_items_the_catalog_lacks_are_left_out() -> None:
    index = AskIndex(NAMES, ASKS)
    assert len(index) == 5
    found = index.search("这条不会被用到")
    assert all(match.ask != "这条不会被用到" for match in found.items.values())


@pytest.mark.parametrize("message", ["", "的了吗", "😀", "a" * 10_000])
def test_messages_without_features_find_nothing(message: str) -> None:
    found = AskIndex(NAMES, ASKS, OUTSIDE).search(message)
    assert found.items == {} and found.outside is None


def test_reading_reports_every_bad_entry() -> None:
    with pytest.raises(CatalogError) as caught:
        read_item_asks([{"item": "", "asks": ["x"]}, {"item": "低保", "asks": []}, "junk"], "items.yaml")
    assert len(caught.value.errors) == 3
    with pytest.raises(CatalogError) as caught:
        read_outside_topics([{"topic": "护照", "unless": "护照", "asks": ["办护照"]}], "outside.yaml")
    assert "unless" in str(caught.value.errors[0])
    with pytest.raises(CatalogError):
        read_item_asks({"item": "低保"}, "items.yaml")
    topics = read_outside_topics([{"topic": "天气", "asks": ["明天下雨不", "明天下雨不"]}], "o.yaml")
    assert topics[0].asks == ("明天下雨不",) and not topics[0].about_center
    staff = read_outside_topics([{"topic": "对窗口服务的意见", "center": True, "asks": ["态度好差"]}], "o.yaml")
    assert staff[0].about_center
    with pytest.raises(CatalogError) as caught:
        read_outside_topics([{"topic": "对窗口服务的意见", "center": "yes", "asks": ["态度好差"]}], "o.yaml")
    assert "center" in str(caught.value.errors[0])
