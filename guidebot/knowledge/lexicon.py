"""Domain knowledge that is not in the catalog: what citizens call things, and filler words.

`synonyms.yaml` maps phrases citizens write (say) to words of official item names (means). It holds
no item codes, so the same table serves any center's catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from guidebot.knowledge.normalize import compact


@dataclass(frozen=True)
class Synonym:
    say: tuple[str, ...]
    means: tuple[str, ...]


@dataclass(frozen=True)
class Lexicon:
    synonyms: tuple[Synonym, ...]
    stopwords: frozenset[str]

    @property
    def phrases(self) -> set[str]:
        """Every phrase the table knows, for the tokenizer's user dictionary and typo correction."""
        words: set[str] = set()
        for synonym in self.synonyms:
            words.update(synonym.say)
            words.update(synonym.means)
        return words


def parse_synonyms(doc: object) -> tuple[Synonym, ...]:
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise ValueError("synonyms: expected a mapping with an `entries` list")
    synonyms = []
    for index, entry in enumerate(doc["entries"], 1):
        if not isinstance(entry, dict):
            raise ValueError(f"synonyms: entry {index} is not a mapping")
        say = tuple(dict.fromkeys(c for c in (compact(str(s)) for s in entry.get("say") or []) if c))
        means = tuple(dict.fromkeys(c for c in (compact(str(m)) for m in entry.get("means") or []) if c))
        if not say or not means:
            raise ValueError(f"synonyms: entry {index} needs both `say` and `means`")
        synonyms.append(Synonym(say, means))
    return tuple(synonyms)


@lru_cache(maxsize=1)
def bundled_lexicon() -> Lexicon:
    data = resources.files("guidebot") / "data"
    synonyms: tuple[Synonym, ...] = ()
    # synonyms.yaml, then synonyms-*.yaml (one file per area, so the table can grow by parts).
    for entry in sorted((e for e in data.iterdir() if e.name.startswith("synonyms") and e.name.endswith(".yaml")),
                        key=lambda e: e.name):
        synonyms += parse_synonyms(yaml.safe_load(entry.read_text(encoding="utf-8")))
    stop_file = data / "stopwords.txt"
    stopwords: set[str] = set(BUILTIN_STOPWORDS)
    if stop_file.is_file():
        for line in stop_file.read_text(encoding="utf-8").splitlines():
            word = compact(line.split("#", 1)[0])
            if word:
                stopwords.add(word)
    return Lexicon(synonyms=synonyms, stopwords=frozenset(stopwords))


# The minimum filler set, so that matching stays sane even without stopwords.txt.
BUILTIN_STOPWORDS = (
    "的", "了", "吗", "呢", "吧", "啊", "呀", "嘛", "么", "哦", "我", "你", "您", "他", "她", "我们", "你们",
    "请问", "请", "问", "想", "想问", "我想", "要", "需要", "怎么", "怎么办", "怎样", "如何", "什么", "啥",
    "哪些", "一下", "办", "办理", "去", "可以", "能", "能不能", "是", "有", "在", "和", "与", "及", "或",
    "这个", "那个", "一个", "个", "谢谢", "麻烦", "咨询", "知道", "告诉", "帮", "帮忙", "下",
)
