import pytest

from guidebot.knowledge.fields import Field, detect_field
from guidebot.knowledge.normalize import name_variants, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("身份證", "身份证"),
        ("營業執照怎麼辦", "营业执照怎么办"),
        ("ＡＢＣ１２３", "abc123"),
        ("身份\u200b证", "身份证"),
        ("户口\ufeff本", "户口本"),
        ("<b>户口</b>&amp;", "户口"),
        ("社保卡😀😀！！", "社保卡"),
        ("  多个   空格 ", "多个 空格"),
        ("控制\x00字符\x07", "控制 字符"),
        ("👍🎉", ""),
        ("", ""),
    ],
    ids=["traditional", "traditional-sentence", "full-width", "zero-width", "bom", "markup", "emoji",
         "spaces", "control", "emoji-only", "empty"],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_name_variants_drop_parentheses() -> None:
    variants = name_variants("食品（含保健食品）经营许可（新办）")
    assert variants[0] == "食品含保健食品经营许可新办"
    assert "食品经营许可" in variants


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("办身份证要带什么材料", Field.MATERIALS),
        ("结婚登记收费吗", Field.FEE),
        ("要多少钱", Field.FEE),
        ("无犯罪记录证明要几天", Field.TIME_LIMIT),
        ("那要多久", Field.TIME_LIMIT),
        ("残疾证在哪个窗口办", Field.LOCATION),
        ("低保要什么条件", Field.CONDITIONS),
        ("个体户注册流程", Field.PROCEDURE),
        ("依据哪条法律", Field.BASIS),
        ("申请表在哪下载", Field.FORMS),
        ("网上能办吗", Field.ONLINE),
        ("教师资格认定", Field.ALL),
        ("办身份证", Field.ALL),
        ("要带什么，收费吗", Field.ALL),
    ],
)
def test_detect_field(text: str, field: Field) -> None:
    assert detect_field(normalize(text)) is field
