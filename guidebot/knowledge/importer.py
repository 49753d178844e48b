"""Load catalogs from YAML/JSON (canonical) and from CSV/XLSX exports, all-or-nothing.

Every problem is collected as a `RowError` (row, column, message); when there is any, loading
raises `CatalogError` with all of them and returns nothing, so a catalog is never half-loaded.
The formats are documented in docs/catalog-format.md.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import yaml

from guidebot.knowledge.catalog import FAQ, ITEM_KINDS, Catalog, Center, Fee, Item, Material


@dataclass(frozen=True)
class RowError:
    row: int | str
    column: str
    message: str

    def __str__(self) -> str:
        where = f"第 {self.row} 行" if isinstance(self.row, int) else str(self.row)
        column = f"，{self.column}" if self.column else ""
        return f"{where}{column}：{self.message}"


class CatalogError(Exception):
    """The file could not be loaded; `errors` lists every problem found."""

    def __init__(self, source: str, errors: list[RowError], what: str = "事项") -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} 处错误，未导入任何{what}")

    def report(self, limit: int = 200) -> str:
        lines = [str(self)]
        lines += [f"  {error}" for error in self.errors[:limit]]
        if len(self.errors) > limit:
            lines.append(f"  …… 另有 {len(self.errors) - limit} 处错误")
        return "\n".join(lines)


# ---------------------------------------------------------------- canonical YAML / JSON

ITEM_KEYS = {
    "code", "name", "main_item", "department", "type", "aliases", "window", "location", "hours", "phone",
    "materials", "fee", "legal_limit_days", "promised_limit_days", "kind", "visits", "window_completes",
    "conditions", "steps", "legal_basis", "online_url", "faqs", "sample", "source",
}
CENTER_KEYS = {"name", "address", "hours", "phone", "complaint_phone", "parking", "faqs", "attribution"}
MATERIAL_KEYS = {"name", "form", "copies", "note", "form_url"}
FEE_KEYS = {"free", "amount", "basis"}
LIST_KEYS = ("aliases", "conditions", "steps", "legal_basis")
INT_KEYS = ("legal_limit_days", "promised_limit_days", "visits")
TEXT_KEYS = ("code", "name", "main_item", "department", "type", "window", "location", "hours", "phone",
             "kind", "online_url", "source")


class _Collector:
    """Gathers errors for one source so that every problem is reported, not only the first."""

    def __init__(self) -> None:
        self.errors: list[RowError] = []

    def add(self, row: int | str, column: str, message: str) -> None:
        self.errors.append(RowError(row, column, message))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _int_or_none(value: Any, row: int | str, column: str, errors: _Collector) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        errors.add(row, column, f"应为整数，实际为 {value!r}")
        return None
    if isinstance(value, int):
        number = value
    else:
        match = re.fullmatch(r"\s*(\d+)\s*(个?工作日|天|日|次)?\s*", _text(value))
        if not match:
            errors.add(row, column, f"应为整数（如 20 或 20个工作日），实际为 {_text(value)!r}")
            return None
        number = int(match.group(1))
    if number < 0:
        errors.add(row, column, "不能为负数")
        return None
    return number


def _faqs(raw: Any, row: int | str, column: str, errors: _Collector) -> tuple[FAQ, ...]:
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list):
        errors.add(row, column, "应为列表")
        return ()
    faqs = []
    for index, entry in enumerate(raw, 1):
        if not isinstance(entry, Mapping) or not _text(entry.get("q")) or not _text(entry.get("a")):
            errors.add(row, f"{column}[{index}]", "每条常见问题需要 q（问）和 a（答）")
            continue
        faqs.append(FAQ(_text(entry["q"]), _text(entry["a"])))
    return tuple(faqs)


def _material(raw: Any, row: int | str, column: str, errors: _Collector) -> Material | None:
    if isinstance(raw, str):
        return Material(name=raw.strip()) if raw.strip() else None
    if not isinstance(raw, Mapping):
        errors.add(row, column, "材料应为名称或 {name, form, copies, note, form_url}")
        return None
    unknown = set(raw) - MATERIAL_KEYS
    if unknown:
        errors.add(row, column, f"未知字段 {', '.join(sorted(map(str, unknown)))}")
    name = _text(raw.get("name"))
    if not name:
        errors.add(row, column, "材料缺少名称")
        return None
    return Material(
        name=name,
        form=_text(raw.get("form")),
        copies=_int_or_none(raw.get("copies"), row, f"{column}.copies", errors),
        note=_text(raw.get("note")),
        form_url=_text(raw.get("form_url")),
    )


def _fee(raw: Any, row: int | str, errors: _Collector) -> Fee | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, bool):
        return Fee(free=not raw)
    if isinstance(raw, str):
        return parse_fee_text(raw)
    if not isinstance(raw, Mapping):
        errors.add(row, "fee", "应为 {free, amount, basis}")
        return None
    unknown = set(raw) - FEE_KEYS
    if unknown:
        errors.add(row, "fee", f"未知字段 {', '.join(sorted(map(str, unknown)))}")
    free = raw.get("free")
    amount = _text(raw.get("amount"))
    if free is None:
        free = not amount
    if not isinstance(free, bool):
        errors.add(row, "fee.free", "应为 true 或 false")
        return None
    if not free and not amount:
        errors.add(row, "fee.amount", "收费事项需写明金额")
    return Fee(free=free, amount=amount, basis=_text(raw.get("basis")))


def parse_fee_text(text: str, basis: str = "") -> Fee | None:
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"(不收费|免费|无|否|0|0元|不收取费用|免收)", text):
        return Fee(free=True, basis=basis)
    return Fee(free=False, amount=text, basis=basis)


def _str_list(raw: Any, row: int | str, column: str, errors: _Collector) -> tuple[str, ...]:
    if raw in (None, ""):
        return ()
    if isinstance(raw, str):
        return split_multi(raw)
    if not isinstance(raw, list):
        errors.add(row, column, "应为列表")
        return ()
    values = []
    for value in raw:
        if isinstance(value, Mapping | list):
            errors.add(row, column, f"列表项应为文字，实际为 {type(value).__name__}")
            continue
        if _text(value):
            values.append(_text(value))
    return tuple(values)


def item_from_mapping(raw: Any, row: int | str, errors: _Collector, *, require_name: bool = True) -> Item | None:
    """Build an Item from a canonical mapping, adding every problem to `errors`."""
    if not isinstance(raw, Mapping):
        errors.add(row, "", "事项应为键值对")
        return None
    unknown = set(map(str, raw)) - ITEM_KEYS
    if unknown:
        errors.add(row, "", f"未知字段 {', '.join(sorted(unknown))}")
    code, name = _text(raw.get("code")), _text(raw.get("name"))
    if not code:
        errors.add(row, "code", "缺少事项编码")
    if require_name and not name:
        errors.add(row, "name", "缺少事项名称")
    kind = _text(raw.get("kind"))
    if kind and kind not in ITEM_KINDS:
        errors.add(row, "kind", f"应为 {' / '.join(ITEM_KINDS)}，实际为 {kind!r}")
    window_completes = raw.get("window_completes")
    if window_completes is not None and not isinstance(window_completes, bool):
        errors.add(row, "window_completes", "应为 true 或 false")
        window_completes = None
    sample = raw.get("sample", False)
    if not isinstance(sample, bool):
        errors.add(row, "sample", "应为 true 或 false")
        sample = False
    for key in TEXT_KEYS:
        if isinstance(raw.get(key), Mapping | list):
            errors.add(row, key, "应为文字")
    materials_raw = raw.get("materials") or []
    if not isinstance(materials_raw, list):
        errors.add(row, "materials", "应为列表")
        materials_raw = []
    materials = tuple(
        m for i, entry in enumerate(materials_raw, 1)
        if (m := _material(entry, row, f"materials[{i}]", errors)) is not None
    )
    if not code or (require_name and not name):
        return None
    return Item(
        code=code,
        name=name,
        main_item=_text(raw.get("main_item")),
        department=_text(raw.get("department")),
        type=_text(raw.get("type")),
        aliases=_str_list(raw.get("aliases"), row, "aliases", errors),
        window=_text(raw.get("window")),
        location=_text(raw.get("location")),
        hours=_text(raw.get("hours")),
        phone=_text(raw.get("phone")),
        materials=materials,
        fee=_fee(raw.get("fee"), row, errors),
        legal_limit_days=_int_or_none(raw.get("legal_limit_days"), row, "legal_limit_days", errors),
        promised_limit_days=_int_or_none(raw.get("promised_limit_days"), row, "promised_limit_days", errors),
        kind=kind,
        visits=_int_or_none(raw.get("visits"), row, "visits", errors),
        window_completes=window_completes,
        conditions=_str_list(raw.get("conditions"), row, "conditions", errors),
        steps=_str_list(raw.get("steps"), row, "steps", errors),
        legal_basis=_str_list(raw.get("legal_basis"), row, "legal_basis", errors),
        online_url=_text(raw.get("online_url")),
        faqs=_faqs(raw.get("faqs"), row, "faqs", errors),
        sample=sample,
        source=_text(raw.get("source")),
    )


def center_from_mapping(raw: Any, errors: _Collector) -> Center:
    if raw in (None, ""):
        return Center()
    if not isinstance(raw, Mapping):
        errors.add("center", "", "应为键值对")
        return Center()
    unknown = set(map(str, raw)) - CENTER_KEYS
    if unknown:
        errors.add("center", "", f"未知字段 {', '.join(sorted(unknown))}")
    values = {key: _text(raw.get(key)) for key in CENTER_KEYS - {"faqs"} if raw.get(key) is not None}
    return Center(**values, faqs=_faqs(raw.get("faqs"), "center", "faqs", errors))


def _parse_document(text: str, source: str, suffix: str) -> Any:
    try:
        if suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        row: int | str = mark.line + 1 if mark is not None else getattr(exc, "lineno", "文件")
        raise CatalogError(source, [RowError(row, "", f"无法解析：{exc}")]) from None


def _items_from_document(doc: Any, source: str, *, require_name: bool = True) -> tuple[Center | None, list[Item]]:
    errors = _Collector()
    if not isinstance(doc, Mapping) or "items" not in doc:
        raise CatalogError(source, [RowError("文件", "", "应包含 items 列表（以及可选的 center）")])
    unknown = set(map(str, doc)) - {"items", "center"}
    if unknown:
        errors.add("文件", "", f"未知字段 {', '.join(sorted(unknown))}")
    raw_items = doc.get("items") or []
    if not isinstance(raw_items, list):
        raise CatalogError(source, [RowError("文件", "items", "应为列表")])
    center = center_from_mapping(doc["center"], errors) if "center" in doc else None
    items: list[Item] = []
    for index, raw in enumerate(raw_items, 1):
        item = item_from_mapping(raw, f"第 {index} 个事项", errors, require_name=require_name)
        if item is not None:
            items.append(item)
    _check_unique(items, [f"第 {i} 个事项" for i in range(1, len(items) + 1)], errors)
    if errors.errors:
        raise CatalogError(source, errors.errors)
    return center, items


def _check_unique(items: list[Item], rows: list[int | str], errors: _Collector) -> None:
    seen: dict[str, int | str] = {}
    for item, row in zip(items, rows, strict=True):
        if item.code in seen:
            errors.add(row, "事项编码", f"编码 {item.code} 与{_row_text(seen[item.code])}重复")
        else:
            seen[item.code] = row


def _row_text(row: int | str) -> str:
    return f"第 {row} 行" if isinstance(row, int) else str(row)


# ---------------------------------------------------------------- CSV / XLSX

COLUMNS: dict[str, str] = {
    "事项编码": "code", "事项名称": "name", "主项名称": "main_item", "实施部门": "department",
    "事项类型": "type", "别名": "aliases", "办理窗口": "window", "办理地点": "location",
    "办理时间": "hours", "咨询电话": "phone", "申请材料": "materials", "收费标准": "fee",
    "收费依据": "fee_basis", "法定时限": "legal_limit_days", "承诺时限": "promised_limit_days",
    "办件类型": "kind", "到现场次数": "visits", "窗口办结": "window_completes", "受理条件": "conditions",
    "办理流程": "steps", "设定依据": "legal_basis", "网办地址": "online_url", "常见问题": "faqs",
}
# Headers that some systems export under other names.
COLUMN_ALIASES = {
    "实施编码": "事项编码", "办事事项编码": "事项编码", "事项": "事项名称", "名称": "事项名称",
    "主项": "主项名称", "部门": "实施部门", "实施主体": "实施部门", "办理部门": "实施部门",
    "类型": "事项类型", "权力类型": "事项类型", "材料": "申请材料", "收费": "收费标准",
    "是否收费": "收费标准", "法定办结时限": "法定时限", "承诺办结时限": "承诺时限", "窗口": "办理窗口",
    "地点": "办理地点", "电话": "咨询电话", "联系电话": "咨询电话", "条件": "受理条件", "流程": "办理流程",
    "依据": "设定依据", "法律依据": "设定依据", "在线办理": "网办地址",
}
REQUIRED_COLUMNS = ("事项编码", "事项名称")
_MULTI_SPLIT = re.compile(r"\s*(?:\r?\n|；)\s*")
_PART_SPLIT = re.compile(r"\s*[｜|]\s*")


def split_multi(cell: str) -> tuple[str, ...]:
    return tuple(part for part in _MULTI_SPLIT.split(cell.strip()) if part)


def decode_csv_bytes(data: bytes) -> str:
    """UTF-8 (with or without BOM) first, then GB18030 (a superset of GBK, what Chinese Excel saves)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CatalogError("文件", [RowError("文件", "", "无法识别编码：请保存为 UTF-8 或 GBK/GB18030 的 CSV")])


def read_table(path: Path) -> list[list[str]]:
    """Rows of a CSV or XLSX file as lists of text cells, header first."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise CatalogError(str(path), [RowError("文件", "", f"无法读取 Excel 文件：{exc}")]) from None
        try:
            sheet = workbook.worksheets[0]
            return [[_text(cell) for cell in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            workbook.close()
    if suffix == ".xls":
        raise CatalogError(str(path), [RowError("文件", "", "不支持旧版 .xls，请另存为 .xlsx 或 CSV")])
    try:
        text = decode_csv_bytes(path.read_bytes())
    except CatalogError as exc:
        raise CatalogError(str(path), exc.errors) from None
    try:
        return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
    except csv.Error as exc:
        raise CatalogError(str(path), [RowError("文件", "", f"CSV 格式错误：{exc}")]) from None


def _canonical_header(header: str) -> str:
    header = header.strip().lstrip("\ufeff").replace(" ", "").replace("*", "")
    return COLUMN_ALIASES.get(header, header)


def items_from_table(rows: list[list[str]], source: str) -> list[Item]:
    """Items from a table whose first row holds Chinese headers (see docs/catalog-format.md)."""
    if not rows or not any(rows[0]):
        raise CatalogError(source, [RowError(1, "", "文件为空或缺少表头")])
    headers = [_canonical_header(h) for h in rows[0]]
    errors = _Collector()
    missing = [column for column in REQUIRED_COLUMNS if column not in headers]
    if missing:
        errors.add(1, "", f"缺少必需的列：{'、'.join(missing)}（已有：{'、'.join(h for h in headers if h)}）")
    duplicates = {h for h in headers if h and headers.count(h) > 1}
    if duplicates:
        errors.add(1, "", f"列重复：{'、'.join(sorted(duplicates))}")
    unknown = [h for h in headers if h and h not in COLUMNS]
    if unknown:
        errors.add(1, "", f"无法识别的列：{'、'.join(unknown)}（可用列见 docs/catalog-format.md）")
    if errors.errors:
        raise CatalogError(source, errors.errors)

    items: list[Item] = []
    item_rows: list[int | str] = []
    for line_number, cells in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(headers) and any(c.strip() for c in cells[len(headers):]):
            errors.add(line_number, "", f"本行有 {len(cells)} 列，多于表头的 {len(headers)} 列")
        record = {headers[i]: cells[i] if i < len(cells) else "" for i in range(len(headers)) if headers[i]}
        item = _item_from_record(record, line_number, errors)
        if item is not None:
            items.append(item)
            item_rows.append(line_number)
    _check_unique(items, item_rows, errors)
    if errors.errors:
        raise CatalogError(source, errors.errors)
    if not items:
        raise CatalogError(source, [RowError(2, "", "没有任何事项行")])
    return items


def _item_from_record(record: dict[str, str], row: int, errors: _Collector) -> Item | None:
    for column, value in record.items():
        if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in value):
            errors.add(row, column, "含有控制字符")
    raw: dict[str, Any] = {}
    for column, value in record.items():
        key = COLUMNS[column]
        if key in ("fee", "fee_basis", "materials", "faqs", "window_completes"):
            continue
        raw[key] = value
    materials = []
    for index, part in enumerate(split_multi(record.get("申请材料", "")), 1):
        fields = _PART_SPLIT.split(part)
        if len(fields) > 5:
            errors.add(row, "申请材料", f"第 {index} 项材料分段过多（名称｜原件/复印件｜份数｜备注｜表格链接）")
            continue
        fields += [""] * (5 - len(fields))
        materials.append({"name": fields[0], "form": fields[1], "copies": fields[2], "note": fields[3],
                          "form_url": fields[4]})
    raw["materials"] = materials
    faqs = []
    for index, part in enumerate(split_multi(record.get("常见问题", "")), 1):
        fields = _PART_SPLIT.split(part, maxsplit=1)
        if len(fields) != 2:
            errors.add(row, "常见问题", f"第 {index} 条应写成 问｜答")
            continue
        faqs.append({"q": fields[0], "a": fields[1]})
    raw["faqs"] = faqs
    completes = record.get("窗口办结", "").strip()
    if completes:
        if completes in ("是", "Y", "y", "true", "窗口办结"):
            raw["window_completes"] = True
        elif completes in ("否", "N", "n", "false", "部门办结"):
            raw["window_completes"] = False
        else:
            errors.add(row, "窗口办结", f"应为 是 或 否，实际为 {completes!r}")
    item = item_from_mapping(raw, row, _ColumnNamer(errors))
    if item is None:
        return None
    fee = parse_fee_text(record.get("收费标准", ""), record.get("收费依据", "").strip())
    return replace(item, fee=fee) if fee else item


class _ColumnNamer(_Collector):
    """Reports canonical-field errors under the Chinese column a clerk sees in the spreadsheet."""

    _NAMES: ClassVar[dict[str, str]] = {value: key for key, value in COLUMNS.items()}

    def __init__(self, inner: _Collector) -> None:
        self.inner = inner

    def add(self, row: int | str, column: str, message: str) -> None:
        base, dot, rest = column.partition(".")
        bracket = base.split("[")
        name = self._NAMES.get(bracket[0], base)
        if len(bracket) > 1:
            name = f"{name}[{bracket[1]}"
        self.inner.add(row, name + (dot + rest if dot else ""), message)


# ---------------------------------------------------------------- entry points


def load_catalog(path: str | Path) -> Catalog:
    """Load a catalog file of any supported kind; raises CatalogError with every problem."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise CatalogError(source, [RowError("文件", "", "文件不存在")])
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CatalogError(source, [RowError("文件", "", "YAML/JSON 文件须为 UTF-8 编码")]) from None
        center, items = _items_from_document(_parse_document(text, source, suffix), source)
        if not items:
            raise CatalogError(source, [RowError("文件", "items", "没有任何事项")])
        return Catalog(center=center or Center(), items=tuple(items))
    if suffix in (".csv", ".xlsx", ".xlsm", ".xls", ".txt"):
        return Catalog(center=Center(), items=tuple(items_from_table(read_table(path), source)))
    kind = suffix or "（无扩展名）"
    raise CatalogError(source, [RowError("文件", "", f"不支持的文件类型 {kind}：请用 YAML、JSON、CSV 或 XLSX")])


def overlay(base: Iterable[Item], guides: Iterable[Item], source: str) -> list[Item]:
    """Lay guide entries over the items with the same code; unknown codes are errors."""
    items = {item.code: item for item in base}
    errors = _Collector()
    for guide in guides:
        current = items.get(guide.code)
        if current is None:
            errors.add(guide.code, "code", "在事项目录中找不到该编码")
            continue
        # Only what the guide gives: 0 (全程网办) and False (转部门办理) are facts, not gaps.
        changes = {
            key: value for key, value in guide.__dict__.items()
            if key != "code" and value is not None and not (isinstance(value, str | tuple) and not value)
            and not (key == "sample" and value is False)
        }
        items[guide.code] = replace(current, **changes)
    if errors.errors:
        raise CatalogError(source, errors.errors)
    return list(items.values())


def _data_files() -> Any:
    return resources.files("guidebot") / "data"


def read_guides(text: str, source: str) -> list[Item]:
    """Guide entries (items whose name, department … come from the list they are laid over)."""
    _, guides = _items_from_document(_parse_document(text, source, ".yaml"), source, require_name=False)
    return guides


def _bundled_list() -> list[Item]:
    data = _data_files()
    rows = list(csv.reader(io.StringIO((data / "guangan-items.csv").read_text(encoding="utf-8-sig"))))
    return items_from_table(rows, "guangan-items.csv")


def check_guide_file(path: Path) -> list[Item]:
    """Validate a guide file against the bundled item list; the guides laid over it come back."""
    source = str(path)
    guides = read_guides(path.read_text(encoding="utf-8"), source)
    codes = {guide.code for guide in guides}
    return [item for item in overlay(_bundled_list(), guides, source) if item.code in codes]


def load_bundled_catalog() -> Catalog:
    """The embedded default: the 1,135 real items of 广安区 with the bundled guides laid over them."""
    data = _data_files()
    items = _bundled_list()
    for guide_file in sorted(_iter_yaml(data / "guides"), key=lambda entry: entry.name):
        source = f"guides/{guide_file.name}"
        items = overlay(items, read_guides(guide_file.read_text(encoding="utf-8"), source), source)
    center_doc = yaml.safe_load((data / "center.yaml").read_text(encoding="utf-8"))
    errors = _Collector()
    center = center_from_mapping(center_doc, errors)
    if errors.errors:
        raise CatalogError("center.yaml", errors.errors)
    return Catalog(center=center, items=tuple(items))


def _iter_yaml(folder: Any) -> Iterator[Any]:
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name.endswith((".yaml", ".yml")):
            yield entry
