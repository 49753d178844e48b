"""Domain knowledge that is not in the catalog: what citizens call things, and filler words.

`synonyms.yaml` maps phrases citizens write (say) to words of official item names (means). It holds
no item codes, so the same table serves any center's catalog. A center adds its own entries in one
more file of the same format (`guidebot synonyms import`), checked against its catalog before use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from guidebot.knowledge.asks import ItemAsks, OutsideTopic, read_item_asks, read_outside_topics
from guidebot.knowledge.catalog import Catalog
from guidebot.knowledge.importer import CatalogError, RowError
from guidebot.knowledge.normalize import compact, name_variants, normalize


@dataclass(frozen=True)
class Synonym:
    say: tuple[str, ...]
    means: tuple[str, ...]


@dataclass(frozen=True)
class Lexicon:
    synonyms: tuple[Synonym, ...]
    stopwords: frozenset[str]
    item_asks: tuple[ItemAsks, ...] = ()
    outside: tuple[OutsideTopic, ...] = ()

    @property
    def phrases(self) -> set[str]:
        """Every phrase the table knows, for the tokenizer's user dictionary and typo correction."""
        words: set[str] = set()
        for synonym in self.synonyms:
            words.update(synonym.say)
            words.update(synonym.means)
        return words

    def extended(self, words: CenterWords) -> Lexicon:
        return replace(self, synonyms=self.synonyms + words.synonyms, item_asks=self.item_asks + words.item_asks,
                       outside=self.outside + words.outside)


@dataclass(frozen=True)
class CenterWords:
    """What one center adds to the bundled knowledge, in one file: synonyms (`entries`), real
    messages as asks of the items they meant (`asks`), and things it does not handle (`outside`)."""

    synonyms: tuple[Synonym, ...] = ()
    item_asks: tuple[ItemAsks, ...] = ()
    outside: tuple[OutsideTopic, ...] = ()

    def describe(self) -> str:
        asks = sum(len(entry.asks) for entry in self.item_asks)
        return f"{len(self.synonyms)} 条同义词、{asks} 条问法示例、{len(self.outside)} 件本中心不办的事"


def read_synonym_entries(doc: object, source: str = "synonyms", catalog_text: str | None = None
                         ) -> tuple[Synonym, ...]:
    """The entries of one synonym document; every problem is reported at once (CatalogError).

    With `catalog_text` (the catalog's names joined), every `means` must also occur in it.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise CatalogError(source, [RowError("文件", "entries", "应为包含 entries 列表的 YAML（格式同内置同义词表）")],
                           what="同义词")
    synonyms: list[Synonym] = []
    errors: list[RowError] = []
    for index, entry in enumerate(doc["entries"], 1):
        where = f"第 {index} 条"
        if not isinstance(entry, dict):
            errors.append(RowError(where, "", "应为含 say 和 means 的映射"))
            continue
        say = tuple(dict.fromkeys(c for c in (compact(str(s)) for s in _as_list(entry.get("say"))) if c))
        means = tuple(dict.fromkeys(c for c in (compact(str(m)) for m in _as_list(entry.get("means"))) if c))
        if not say:
            errors.append(RowError(where, "say", "缺少群众的说法"))
        if not means:
            errors.append(RowError(where, "means", "缺少对应的事项名称用词"))
        errors += [RowError(where, "say", f"“{phrase}”只有一个字，会误匹配几乎所有消息")
                   for phrase in say if len(phrase) < 2]
        if catalog_text is not None:
            errors += [RowError(where, "means", f"“{phrase}”不在任何事项名称里，匹配不到事项")
                       for phrase in means if phrase not in catalog_text]
        if say and means:
            synonyms.append(Synonym(say, means))
    if errors:
        raise CatalogError(source, errors, what="同义词")
    return tuple(synonyms)


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def load_synonym_file(path: Path, catalog: Catalog | None = None) -> CenterWords:
    """A center's own file, all of it valid, or CatalogError listing every problem.

    With a catalog, every `means` must also occur in one of its item names, and every ask's `item`
    must be one of them (checked on import; at start an entry a later catalog dropped just never
    matches, so it cannot stop the bot).
    """
    source = str(path)
    if not path.is_file():
        raise CatalogError(source, [RowError("文件", "", "文件不存在")], what="同义词")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CatalogError(source, [RowError("文件", "", "须为 UTF-8 编码")], what="同义词") from None
    except yaml.YAMLError as exc:
        raise CatalogError(source, [RowError("文件", "", f"无法解析：{exc}")], what="同义词") from None
    if not isinstance(doc, dict) or not any(key in doc for key in ("entries", "asks", "outside")):
        raise CatalogError(source, [RowError("文件", "", "应为含 entries、asks 或 outside 列表的 YAML")], what="同义词")
    catalog_text = None
    if catalog is not None:
        catalog_text = "|".join(text for item in catalog.items
                                for text in (*name_variants(item.name), *name_variants(item.main_item or ""),
                                             *(normalize(a).replace(" ", "") for a in item.aliases)))
    errors: list[RowError] = []
    synonyms: tuple[Synonym, ...] = ()
    item_asks: tuple[ItemAsks, ...] = ()
    outside: tuple[OutsideTopic, ...] = ()
    # Each section is read in full, so that one report lists the problems of all three.
    try:
        if "entries" in doc:
            synonyms = read_synonym_entries(doc, source, catalog_text)
    except CatalogError as exc:
        errors += exc.errors
    names = {compact(item.name) for item in catalog.items} if catalog is not None else None
    try:
        item_asks = read_item_asks(doc.get("asks", []), source, names)
    except CatalogError as exc:
        errors += [replace(e, row=f"asks {e.row}") for e in exc.errors]
    try:
        outside = read_outside_topics(doc.get("outside", []), source)
    except CatalogError as exc:
        errors += [replace(e, row=f"outside {e.row}") for e in exc.errors]
    if errors:
        raise CatalogError(source, errors, what="同义词")
    return CenterWords(synonyms, item_asks, outside)


@lru_cache(maxsize=1)
def bundled_lexicon() -> Lexicon:
    data = resources.files("guidebot") / "data"
    synonyms: tuple[Synonym, ...] = ()
    # synonyms.yaml, then synonyms-*.yaml (one file per area, so the table can grow by parts).
    for entry in sorted((e for e in data.iterdir() if e.name.startswith("synonyms") and e.name.endswith(".yaml")),
                        key=lambda e: e.name):
        synonyms += read_synonym_entries(yaml.safe_load(entry.read_text(encoding="utf-8")), entry.name)
    stop_file = data / "stopwords.txt"
    stopwords: set[str] = set(BUILTIN_STOPWORDS)
    if stop_file.is_file():
        for line in stop_file.read_text(encoding="utf-8").splitlines():
            word = compact(line.split("#", 1)[0])
            if word:
                stopwords.add(word)
    item_asks: tuple[ItemAsks, ...] = ()
    outside: tuple[OutsideTopic, ...] = ()
    examples = data / "examples"
    if examples.is_dir():
        for entry in sorted((e for e in examples.iterdir() if e.name.endswith(".yaml")), key=lambda e: e.name):
            doc = yaml.safe_load(entry.read_text(encoding="utf-8"))
            if entry.name.startswith("outside"):
                outside += read_outside_topics(doc, entry.name)
            else:
                item_asks += read_item_asks(doc, entry.name)
    return Lexicon(synonyms=synonyms, stopwords=frozenset(stopwords), item_asks=item_asks, outside=outside)


# The minimum filler set, so that matching stays sane even without stopwords.txt.
BUILTIN_STOPWORDS = (
    "的", "了", "吗", "呢", "吧", "啊", "呀", "嘛", "么", "哦", "我", "你", "您", "他", "她", "我们", "你们",
    "请问", "请", "问", "想", "想问", "我想", "要", "需要", "怎么", "怎么办", "怎样", "如何", "什么", "啥",
    "哪些", "一下", "办", "办理", "去", "可以", "能", "能不能", "是", "有", "在", "和", "与", "及", "或",
    "这个", "那个", "一个", "个", "谢谢", "麻烦", "咨询", "知道", "告诉", "帮", "帮忙", "下",
)
