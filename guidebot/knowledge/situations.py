"""The situations of one thing (新办, 变更, 补办, 注销 …): how item names mark them and how citizens say them.

A main item (食品经营许可) is offered in several situations; telling which one a message asks for
is what separates an answer from a sibling's answer."""

from __future__ import annotations

# Citizens' words for a transfer: either way, coming here, leaving (shared by "move" and its directions).
_EITHER_WAY = ("迁移", "转移", "转到", "迁到")
_MOVING_IN = ("转入", "迁入", "转过来", "转回", "迁过来", "迁回", "转进来", "迁进来", "转回来", "接过来", "转来",
              "弄过来", "弄回来", "办过来")
_MOVING_OUT = ("转出", "迁出", "转走", "迁走", "转过去", "迁过去")

# The situations that tell an item from its siblings (食品经营许可 核发/变更/延续/注销 …): the words of
# item names that mark each one, and the words citizens use for it. "new" marks nothing unasked:
# it is what a citizen means when they name no situation at all.
SITUATIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "new": (("新办", "核发", "设立", "初次", "首次", "新增", "初领", "申领", "发放"),
            ("新办", "核发", "设立", "初次", "首次", "新增", "新开", "刚开", "想开", "第一次", "申领")),
    # A death ends what the person held: 户口, 养老保险, 残疾人证 … are 注销ed (死亡注销).
    "cancel": (("注销", "终止"),
               ("注销", "终止", "不干了", "不开了", "不做了", "不想开了", "不想做了", "不想干了", "关门", "关掉",
                "停办", "开不走", "开不下去", "过世", "去世", "逝世", "死了", "死亡", "不在了")),
    "change": (("变更", "更正", "更名"),
               ("变更", "更正", "更改", "变动", "要变", "有变", "跟着改", "改名", "换法人", "改地址", "换地址",
                "换成", "改成", "改一下", "要改", "去改", "想改", "咋个改", "怎么改", "改过来", "加卖", "增加经营",
                "增加项目", "扩大经营", "店名", "扩到", "扩大", "增加到", "加点", "多加", "搬迁", "换地方", "新地址",
                "老地址", "换场所", "换经营场所", "换门面", "换店面", "换个门面")),
    "replace": (("补办", "补发", "补领", "遗失"),
                ("补办", "补发", "补领", "补证", "遗失", "丢了", "丢失", "弄丢", "搞掉", "掉了", "找不到", "不见了",
                 "补一个", "补个", "补张", "补一张", "补一本", "掉哪", "证补", "卡补", "照补", "本补")),
    "renew": (("延续", "延期", "续期", "再注册"),
              ("延续", "延期", "续期", "续证", "到期", "快过期", "过期了", "期满", "再注册", "重新注册")),
    # The yearly or periodic check of a licence or vehicle (年审, 复审): not a renewal, not a new one.
    "inspect": (("审验", "年审", "年检", "复审", "校验"),
                ("审验", "年审", "年检", "复审", "校验", "审一下", "每年都要审", "年年都要审")),
    "reissue": (("换发", "换领", "换证", "期满换"),
                ("换发", "换领", "换证", "换新", "换个新", "到期", "期满", "过期", "过期了", "烂了", "烂得", "损坏",
                 "破损", "磨损", "看不清", "要换", "换一下", "证换", "卡换")),
    # A transfer, and its two directions: an item marked 转入 is a sibling of one marked 转出; one marked
    # 转移 (关系转移接续) serves both. Words that do not say the direction ask both.
    "move": (("迁移", "转移"), _EITHER_WAY + _MOVING_IN + _MOVING_OUT),
    "move_in": (("转入", "迁入", "接收"), (*_EITHER_WAY, *_MOVING_IN, "接收")),
    "move_out": (("转出", "迁出"), _EITHER_WAY + _MOVING_OUT),
    "lost": (("挂失",),
             ("挂失", "丢了", "丢失", "弄丢", "搞掉", "掉了", "被偷", "不见了", "遭偷", "遭摸", "被摸", "被盗", "冒用",
              "乱用", "盗用")),
    # Getting back what was taken away: a household registration cancelled while in prison or abroad.
    "restore": (("恢复",), ("恢复", "刑满", "出狱", "户口没了", "没得我了", "被注销了", "被销了")),
    "void": (("作废", "撤销"), ("作废", "撤销", "撤回")),
    "transfer": (("过户", "转移登记"), ("过户", "卖给", "转让", "二手")),
    "claim": (("待遇申领", "待遇发放", "领取", "补助金", "扶助金", "补贴申领", "津贴", "金申领"),
              ("领钱", "领点钱", "领养老金", "领退休金", "开始领", "能领", "可以领", "领多少", "领啥", "领什么", "发钱",
               "开始发", "按月领", "每月领", "每个月领")),
    "arrears": (("补缴",), ("补缴", "补交", "断缴", "断交", "漏交", "漏缴", "欠缴", "没交够", "少交了")),
    "query": (("查询",), ("查询", "查一下", "查下", "查查", "查看", "查余额", "查个", "想查")),
}

SITUATION_MARKS = tuple(mark for marks, _ in SITUATIONS.values() for mark in marks)
# Each citizen's word for a situation → the situations it may mean (丢了: replace or lost), and the name
# words of all of them (丢了: 补办, 挂失 …).
_SAY_SITUATIONS: dict[str, frozenset[str]] = {}
SITUATION_SAYS: dict[str, tuple[str, ...]] = {}
for _kind, (_marks, _says) in SITUATIONS.items():
    for _say in _says:
        _SAY_SITUATIONS[_say] = _SAY_SITUATIONS.get(_say, frozenset()) | {_kind}
        SITUATION_SAYS[_say] = tuple(dict.fromkeys((*SITUATION_SAYS.get(_say, ()), *_marks)))
SITUATION_SAY_LENGTHS = sorted({len(say) for say in SITUATION_SAYS}, reverse=True)


def asked_situations(text: str) -> frozenset[str]:
    """The situations a message asks about (丢了 → replace or lost, 续期 → renew …).

    A word that may mean several is read by a surer word beside it: 丢了，补办要好多钱 asks to
    replace, not to report the loss; 到期了要换证 to reissue, not to renew."""
    said = [_SAY_SITUATIONS[say] for say in _says_in(text)]
    asked: set[str] = set()
    for kinds in said:
        surer = [other for other in said if other < kinds]
        asked |= set().union(*surer) if surer else kinds
    return frozenset(asked)


def for_other_situation(marked: frozenset[str], asked: frozenset[str]) -> bool:
    """An item marked for some situations (设立) while the message asks only others (注销): a sibling's."""
    return bool(asked and marked and not marked & asked)


def marked_situations(name: str) -> frozenset[str]:
    """The situations an item name (or an official phrase) marks: 食品经营许可变更 → change."""
    return frozenset(kind for kind, (marks, _) in SITUATIONS.items() if any(mark in name for mark in marks))


_NEGATIONS = frozenset("不没别")
# 舍不得注销, 不想注销, 不用补办: a word after these is not asked either.
_NEGATING_WORDS = ("不得", "不想", "不用", "不要", "没有", "不打算", "不准备")


def _says_in(text: str) -> set[str]:
    """The citizens' words for a situation said in the text: not negated (不想开了 does not say 想开, 舍不得
    注销 not 注销, but 能不能领 asks 能领), and not inside a longer one said there (户口被注销了 asks to
    restore, not to cancel)."""
    found: list[tuple[int, int, str]] = []
    for say in _SAY_SITUATIONS:
        start = text.find(say)
        while start >= 0:
            before = text[max(0, start - 3) : start]
            negated = ((start > 0 and text[start - 1] in _NEGATIONS and not (start > 1 and text[start - 2] == say[0]))
                       or before.endswith(_NEGATING_WORDS))
            if not negated:
                found.append((start, start + len(say), say))
            start = text.find(say, start + 1)
    return {say for begin, end, say in found
            if not any(b <= begin and end <= e and e - b > end - begin for b, e, _ in found)}
