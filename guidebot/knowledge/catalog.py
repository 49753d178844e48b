"""The catalog: service items (事项) and the center that offers them.

Plain frozen dataclasses, no I/O: loading lives in `guidebot.knowledge.importer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MATERIAL_FORMS = ("原件", "复印件", "原件及复印件", "电子材料", "原件（核验）")
ITEM_KINDS = ("即办件", "承诺件")


@dataclass(frozen=True)
class Material:
    name: str
    form: str = ""
    copies: int | None = None
    note: str = ""
    form_url: str = ""


@dataclass(frozen=True)
class Fee:
    free: bool
    amount: str = ""
    basis: str = ""


@dataclass(frozen=True)
class FAQ:
    question: str
    answer: str


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    main_item: str = ""
    department: str = ""
    type: str = ""
    aliases: tuple[str, ...] = ()
    window: str = ""
    location: str = ""
    hours: str = ""
    phone: str = ""
    materials: tuple[Material, ...] = ()
    fee: Fee | None = None
    legal_limit_days: int | None = None
    promised_limit_days: int | None = None
    kind: str = ""
    visits: int | None = None
    window_completes: bool | None = None
    conditions: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    legal_basis: tuple[str, ...] = ()
    online_url: str = ""
    faqs: tuple[FAQ, ...] = ()
    sample: bool = False
    source: str = ""

    @property
    def has_guide(self) -> bool:
        """True when the item carries more than its name (materials, fee, time limits …)."""
        return bool(self.materials or self.fee or self.promised_limit_days or self.steps or self.conditions)


@dataclass(frozen=True)
class Center:
    name: str = "区政务服务中心"
    address: str = ""
    hours: str = ""
    phone: str = ""
    complaint_phone: str = "12345"
    parking: str = ""
    faqs: tuple[FAQ, ...] = ()
    attribution: str = ""


@dataclass(frozen=True)
class Catalog:
    center: Center
    items: tuple[Item, ...]
    by_code: dict[str, Item] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.by_code:
            object.__setattr__(self, "by_code", {item.code: item for item in self.items})

    def get(self, code: str) -> Item | None:
        return self.by_code.get(code)

    def item_name(self, code: str) -> str | None:
        """The name of the item with this code, for cases and statistics that store only codes."""
        item = self.by_code.get(code)
        return item.name if item else None

    def promised_days(self, code: str) -> int | None:
        """The promised limit in working days of the item with this code, if known."""
        item = self.by_code.get(code)
        return item.promised_limit_days if item else None

    def siblings(self, item: Item) -> tuple[Item, ...]:
        """The other situations of the same main item (变更, 延续, 注销 … of 食品经营许可)."""
        if not item.main_item:
            return ()
        if not hasattr(self, "_by_main"):
            by_main: dict[str, list[Item]] = {}
            for entry in self.items:
                if entry.main_item:
                    by_main.setdefault(entry.main_item, []).append(entry)
            object.__setattr__(self, "_by_main", by_main)
        return tuple(entry for entry in self._by_main[item.main_item] if entry.code != item.code)

    def __len__(self) -> int:
        return len(self.items)
