"""Catalog import: every format and encoding, every kind of bad row, and all-or-nothing."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from guidebot.app import install_catalog
from guidebot.knowledge.export import catalog_to_yaml
from guidebot.knowledge.importer import CatalogError, load_bundled_catalog, load_catalog
from guidebot.settings import Settings
from tests.conftest import DATA, REPO

HEADER = "事项编码,事项名称,主项名称,实施部门,事项类型,申请材料,收费标准,承诺时限,办件类型,窗口办结,常见问题\n"
GOOD_ROWS = (
    'A-1,居民身份证办理,,公安分局,行政许可,"居民户口簿｜原件｜1\n照片｜原件｜2｜可现场拍",工本费20元,20个工作日,承诺件,是,可以异地办吗｜可以\n'
    "A-2,食品经营许可（新办）,食品经营许可,行政审批局,行政许可,营业执照｜复印件｜1；身份证｜原件,免费,10,承诺件,否,\n"
    "A-3,无犯罪记录证明,,公安分局,公共服务,,,,,,\n"
)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_csv_in_every_encoding(tmp_path: Path, encoding: str) -> None:
    catalog = load_catalog(write(tmp_path / "items.csv", HEADER + GOOD_ROWS, encoding))
    assert [item.code for item in catalog.items] == ["A-1", "A-2", "A-3"]
    id_card = catalog.get("A-1")
    assert id_card is not None
    assert [(m.name, m.form, m.copies) for m in id_card.materials] == [("居民户口簿", "原件", 1), ("照片", "原件", 2)]
    assert id_card.materials[1].note == "可现场拍"
    assert id_card.fee is not None and not id_card.fee.free and id_card.fee.amount == "工本费20元"
    assert id_card.promised_limit_days == 20 and id_card.kind == "承诺件" and id_card.window_completes is True
    assert id_card.faqs[0].answer == "可以"
    food = catalog.get("A-2")
    assert food is not None and food.fee is not None and food.fee.free
    assert [m.name for m in food.materials] == ["营业执照", "身份证"]
    assert food.main_item == "食品经营许可" and food.window_completes is False
    assert not catalog.get("A-3").has_guide  # name and code only is a valid row


def test_xlsx(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["事项编码", "事项名称", "实施部门", "法定时限"])
    sheet.append(["X-1", "结婚登记", "民政局", 1])
    sheet.append([None, None, None, None])
    sheet.append(["X-2", "残疾人证新办", "残联", "30个工作日"])
    workbook.save(tmp_path / "items.xlsx")
    catalog = load_catalog(tmp_path / "items.xlsx")
    assert [(i.code, i.legal_limit_days) for i in catalog.items] == [("X-1", 1), ("X-2", 30)]


def test_the_real_district_list_loads_as_it_is() -> None:
    catalog = load_catalog(REPO.parent / "shared" / "catalogs" / "guangan-items.csv") if (
        REPO.parent / "shared" / "catalogs" / "guangan-items.csv").exists() else load_catalog(
        REPO / "guidebot" / "data" / "guangan-items.csv")
    assert len(catalog) == 1135
    assert len({item.department for item in catalog.items}) >= 34


@pytest.mark.parametrize(
    ("csv_text", "expected"),
    [
        ("事项名称,实施部门\n身份证,公安\n", "缺少必需的列：事项编码"),
        ("事项编码,事项名称,颜色\nA,身份证,红\n", "无法识别的列：颜色"),
        ("事项编码,事项名称\nA,身份证\nA,户口\n", "第 3 行，事项编码：编码 A 与第 2 行重复"),
        ("事项编码,事项名称\n,身份证\n", "第 2 行，事项编码：缺少事项编码"),
        ("事项编码,事项名称\nA,\n", "第 2 行，事项名称：缺少事项名称"),
        ("事项编码,事项名称,承诺时限\nA,身份证,很快\n", "第 2 行，承诺时限：应为整数"),
        ("事项编码,事项名称,办件类型\nA,身份证,加急件\n", "第 2 行，办件类型"),
        ("事项编码,事项名称,窗口办结\nA,身份证,也许\n", "第 2 行，窗口办结：应为 是 或 否"),
        ("事项编码,事项名称,常见问题\nA,身份证,只有问题没有答案\n", "第 2 行，常见问题：第 1 条应写成 问｜答"),
        ("事项编码,事项名称,申请材料\nA,身份证,a|b|c|d|e|f\n", "第 2 行，申请材料：第 1 项材料分段过多"),
        ("事项编码,事项名称,申请材料\nA,身份证,户口簿｜原件｜两份\n", "第 2 行，申请材料[1].copies：应为整数"),
        ("事项编码,事项名称\nA,身份\x01证\n", "第 2 行，事项名称：含有控制字符"),
        ("事项编码,事项名称\nA,身份证,多出来\n", "第 2 行：本行有 3 列"),
        ("", "文件为空"),
        ("事项编码,事项名称\n", "没有任何事项行"),
    ],
    ids=["missing-column", "unknown-column", "duplicate-code", "no-code", "no-name", "bad-int", "bad-kind",
         "bad-bool", "bad-faq", "bad-material", "bad-copies", "control-char", "extra-cell", "empty", "header-only"],
)
def test_bad_csv_is_rejected_with_row_and_column(tmp_path: Path, csv_text: str, expected: str) -> None:
    with pytest.raises(CatalogError) as raised:
        load_catalog(write(tmp_path / "bad.csv", csv_text))
    assert expected in raised.value.report()


def test_every_bad_row_is_reported_not_only_the_first(tmp_path: Path) -> None:
    text = "事项编码,事项名称,承诺时限\nA,身份证,x\n,户口,\nC,低保,-\n"
    with pytest.raises(CatalogError) as raised:
        load_catalog(write(tmp_path / "bad.csv", text))
    rows = sorted(error.row for error in raised.value.errors)
    assert rows == [2, 3, 4]


def test_undecodable_bytes(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00\x81\x30\x81" * 3 + b"\x80")
    with pytest.raises(CatalogError) as raised:
        load_catalog(tmp_path / "bad.csv")
    assert "无法识别编码" in raised.value.report()


def test_yaml_and_json_round_trip(tmp_path: Path, small_catalog) -> None:
    exported = write(tmp_path / "round.yaml", catalog_to_yaml(small_catalog))
    assert load_catalog(exported) == small_catalog
    as_json = json.dumps({"items": [{"code": "J-1", "name": "结婚登记", "fee": {"free": True}}]}, ensure_ascii=False)
    catalog = load_catalog(write(tmp_path / "c.json", as_json))
    assert catalog.get("J-1").fee.free


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("items: [\n  - code: A\n", "无法解析"),
        ("center: {}\n", "应包含 items"),
        ("items:\n  - code: A\n    name: 身份证\n    colour: red\n", "未知字段 colour"),
        ("items:\n  - code: A\n    name: 身份证\n    fee: {free: false}\n", "收费事项需写明金额"),
        ("items:\n  - code: A\n    name: 身份证\n    materials: [{form: 原件}]\n", "材料缺少名称"),
        ("items:\n  - code: A\n    name: 身份证\n    visits: many\n", "visits：应为整数"),
        ("items:\n  - {code: A, name: x}\n  - {code: A, name: y}\n", "与第 1 个事项重复"),
    ],
    ids=["syntax", "no-items", "unknown-key", "fee-without-amount", "material-without-name", "bad-int", "duplicate"],
)
def test_bad_yaml(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(CatalogError) as raised:
        load_catalog(write(tmp_path / "bad.yaml", text))
    assert expected in raised.value.report()


def test_unsupported_file_types(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as raised:
        load_catalog(write(tmp_path / "items.doc", "x"))
    assert "不支持的文件类型 .doc" in raised.value.report()
    with pytest.raises(CatalogError) as raised:
        load_catalog(tmp_path / "missing.csv")
    assert "文件不存在" in raised.value.report()


def test_import_is_all_or_nothing(tmp_path: Path) -> None:
    settings = Settings.load(environ={"GUIDEBOT_DATA_DIR": str(tmp_path / "data")}, env_file=tmp_path / "none")
    install_catalog(DATA / "small.yaml", settings)
    installed = (tmp_path / "data" / "catalog.yaml").read_text(encoding="utf-8")
    bad = write(tmp_path / "bad.csv", "事项编码,事项名称\nZ,新事项\nZ,重复\n")
    with pytest.raises(CatalogError):
        install_catalog(bad, settings)
    assert (tmp_path / "data" / "catalog.yaml").read_text(encoding="utf-8") == installed
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["catalog.yaml"]  # no temp file left


def test_bundled_catalog_has_real_items_and_guides() -> None:
    catalog = load_bundled_catalog()
    assert len(catalog) == 1135
    guided = [item for item in catalog.items if item.has_guide]
    assert len(guided) >= 60
    for item in guided:
        assert item.sample, item.name
        assert item.legal_basis, f"{item.name} names no legal basis"
        assert item.materials, f"{item.name} lists no materials"
    assert "Apache-2.0" in catalog.center.attribution


def test_overlay_keeps_zero_and_false() -> None:
    from guidebot.knowledge.catalog import Item
    from guidebot.knowledge.importer import overlay

    base = [Item(code="A", name="社会保障卡挂失", department="人社局")]
    guide = Item(code="A", name="", visits=0, window_completes=False, aliases=("社保卡丢了",))
    merged = overlay(base, [guide], "guide.yaml")[0]
    assert (merged.name, merged.department) == ("社会保障卡挂失", "人社局")
    assert (merged.visits, merged.window_completes) == (0, False)
    assert merged.aliases == ("社保卡丢了",)
    with pytest.raises(CatalogError) as raised:
        overlay(base, [Item(code="B", name="")], "guide.yaml")
    assert "找不到该编码" in raised.value.report()
