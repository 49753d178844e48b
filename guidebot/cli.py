"""The `guidebot` command. Each subcommand is a thin call into `guidebot.app` and the modules it wires."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from guidebot.knowledge.importer import CatalogError
from guidebot.settings import Settings, SettingsError

if TYPE_CHECKING:
    from guidebot.knowledge.matching import CatalogIndex
    from guidebot.store.db import UnansweredQuestion

# Modules that add their own subcommands with `register(subparsers)`: each feature keeps its
# commands beside its code, and this list is the one place that shows them all.
COMMAND_MODULES: tuple[str, ...] = (
    "guidebot.cases.cli",
    "guidebot.outbox.cli",
    "guidebot.handlers.telegram.cli",
    "guidebot.handlers.sms.cli",
)


def _settings() -> Settings:
    return Settings.load()


def cmd_chat(args: argparse.Namespace) -> int:
    """Chat in the terminal with the configured (or bundled) catalog."""
    from guidebot.app import build
    from guidebot.handlers.console import run_chat

    bot = build(_settings(), persistent=not args.memory)
    run_chat(bot.engine, sender=args.sender)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one question and exit."""
    from guidebot.app import build
    from guidebot.dialog.replies import Inbound

    bot = build(_settings(), persistent=False)
    for reply in bot.engine.handle(Inbound(channel="console", sender="ask", text=" ".join(args.question))):
        print(reply.plain())
    return 0


def cmd_catalog_check(args: argparse.Namespace) -> int:
    """Validate a catalog file and report every problem, changing nothing."""
    from guidebot.knowledge.importer import check_guide_file, load_catalog

    if args.guides:
        checked = check_guide_file(Path(args.file))
        print(f"{args.file}: {len(checked)} 条指南，均能对应到内置事项目录；检查通过。")
        return 0
    catalog = load_catalog(args.file)
    guides = sum(1 for item in catalog.items if item.has_guide)
    print(f"{args.file}: {len(catalog)} 个事项，其中 {guides} 个有详细指南；检查通过。")
    return 0


def cmd_catalog_import(args: argparse.Namespace) -> int:
    """Validate a catalog file and, only if all of it is valid, make it the catalog in use."""
    from guidebot.app import install_catalog

    catalog, target = install_catalog(Path(args.file), _settings())
    print(f"已导入 {len(catalog)} 个事项 → {target}")
    return 0


def cmd_synonyms_check(args: argparse.Namespace) -> int:
    """Validate the center's own synonym file against the catalog in use, changing nothing."""
    from guidebot.app import load_configured_catalog
    from guidebot.knowledge.lexicon import load_synonym_file

    words = load_synonym_file(Path(args.file), load_configured_catalog(_settings()))
    print(f"{args.file}: {words.describe()}，均能对应到目录中的事项；检查通过。")
    return 0


def cmd_synonyms_import(args: argparse.Namespace) -> int:
    """Validate the center's own synonym file and, only if all of it is valid, put it in use."""
    from guidebot.app import install_synonyms

    words, target = install_synonyms(Path(args.file), _settings())
    print(f"已导入 {words.describe()} → {target}（重启机器人后生效）")
    return 0


def cmd_synonyms_draft(args: argparse.Namespace) -> int:
    """The questions the bot could not answer, most asked first, as an `asks:` draft for staff."""
    from guidebot.cli_args import parse_time
    from guidebot.store.db import open_store

    since = parse_time(args.since) if args.since else None
    index = _index_for(None)
    store = open_store(_settings().database_url)
    try:
        unanswered = store.top_unanswered(limit=args.top, since=since)
    finally:
        store.close()
    print(draft_asks(unanswered, index))
    return 0


def draft_asks(unanswered: Sequence[UnansweredQuestion], index: CatalogIndex) -> str:
    """YAML for `guidebot synonyms import`: one entry per question, its item left for staff to fill
    (the matcher's nearest guesses are a comment); what the center does not do goes under outside."""
    lines = [
        "# 未能回答的问题（按被问次数排序）。每条：在 item 填上它要办的事项名称（目录中的原名），",
        "# 同一事项的原话可以合并到一条；本中心不办的事移到 outside（见 docs/catalog-format.md）；用不上的删掉。",
        "# 然后：guidebot synonyms check 本文件 → guidebot synonyms import 本文件",
        "asks:",
    ]
    for question in unanswered:
        guesses = " / ".join(scored.item.name for scored in index.match(question.text).ranked[:3])
        lines.append(f'  - item: ""  # 可能是：{guesses or "（无）"}')
        lines.append(f"    asks: [{json.dumps(question.text, ensure_ascii=False)}]  # 问了 {question.count} 次")
    if not unanswered:
        lines.append("  []  # 没有未能回答的问题")
    return "\n".join(lines)


def _index_for(catalog_path: str | None):
    """The matcher with the synonyms in use, over the catalog file given (as the bot would use it once
    imported) or the one in use."""
    from guidebot.app import configured_index, load_item_list

    return configured_index(_settings(), load_item_list(Path(catalog_path)) if catalog_path else None)


def cmd_match(args: argparse.Namespace) -> int:
    """Read one message per line on stdin; write one JSON decision per line."""
    index = _index_for(args.catalog)
    for line in sys.stdin:
        message = line.rstrip("\n")
        result = index.match(message, top=args.top)
        items = result.items if result.choices else tuple(s.item for s in result.ranked[: args.top])
        scores = result.choices if result.choices else result.ranked[: args.top]
        record = {
            "q": message,
            "decision": result.decision.value,
            "items": [item.code for item in items],
            "scores": [round(s.score, 4) for s in scores],
            "field": result.field.value,
        }
        if result.decision.value == "unknown":
            record["items"], record["scores"] = [], []
        print(json.dumps(record, ensure_ascii=False), flush=True)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Measure matching on a question set and print the rates per kind."""
    from guidebot.knowledge.evaluation import evaluate, format_report, read_questions

    index = _index_for(args.catalog)
    tallies, latencies = evaluate(index, read_questions(Path(args.questions)))
    print(format_report(tallies, latencies))
    if args.failures:
        for tally in tallies.values():
            for failure in tally.failures:
                print(json.dumps(failure, ensure_ascii=False))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web server for webhooks and gateway callbacks."""
    from guidebot.app import build
    from guidebot.web import serve

    serve(build(_settings()), args.host, args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guidebot", description="政务服务中心办事指南助手")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = sub.add_parser("chat", help="终端对话 (interactive terminal chat)")
    chat.add_argument("--sender", default="local", help="who the conversation belongs to")
    chat.add_argument("--memory", action="store_true", help="keep no state in the database")
    chat.set_defaults(handler=cmd_chat)

    ask = sub.add_parser("ask", help="回答一个问题 (answer one question)")
    ask.add_argument("question", nargs="+")
    ask.set_defaults(handler=cmd_ask)

    catalog = sub.add_parser("catalog", help="事项目录 (the item catalog)")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    check = catalog_sub.add_parser("check", help="检查文件，不导入")
    check.add_argument("file")
    check.add_argument("--guides", action="store_true",
                       help="the file holds guides to lay over the bundled item list (guidebot/data/guides)")
    check.set_defaults(handler=cmd_catalog_check)
    imp = catalog_sub.add_parser("import", help="检查并导入（全部正确才导入）")
    imp.add_argument("file")
    imp.set_defaults(handler=cmd_catalog_import)

    synonyms = sub.add_parser("synonyms", help="本中心补充的同义词 (the center's own synonym entries)")
    synonyms_sub = synonyms.add_subparsers(dest="synonyms_command", required=True, metavar="ACTION")
    synonyms_check = synonyms_sub.add_parser("check", help="检查文件，不导入")
    synonyms_check.add_argument("file")
    synonyms_check.set_defaults(handler=cmd_synonyms_check)
    synonyms_import = synonyms_sub.add_parser("import", help="检查并导入（全部正确才导入）")
    synonyms_import.add_argument("file")
    synonyms_import.set_defaults(handler=cmd_synonyms_import)
    synonyms_draft = synonyms_sub.add_parser("draft", help="把未能回答的问题输出为待填写的问法草稿")
    synonyms_draft.add_argument("--top", type=int, default=50)
    synonyms_draft.add_argument("--since", help="只看此后的问题，例如 2025-12-01")
    synonyms_draft.set_defaults(handler=cmd_synonyms_draft)

    match = sub.add_parser("match", help="stdin 每行一条消息 → 每行一个 JSON 决定")
    match.add_argument("--catalog", help="catalog file (default: the one in use)")
    match.add_argument("--top", type=int, default=5)
    match.set_defaults(handler=cmd_match)

    ev = sub.add_parser("eval", help="评测匹配效果")
    ev.add_argument("--catalog", help="catalog file (default: the one in use)")
    ev.add_argument("--questions", required=True, help="JSONL: {q, gold, kind} per line")
    ev.add_argument("--failures", action="store_true", help="also print every question not answered right")
    ev.set_defaults(handler=cmd_eval)

    serve = sub.add_parser("serve", help="Web 服务：Telegram webhook、短信网关回调")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(handler=cmd_serve)

    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # Feature modules register with `set_defaults(func=…)` or `handler=…`; both mean the same.
        handler = getattr(args, "handler", None) or args.func
        return int(handler(args) or 0)
    except CatalogError as error:
        print(error.report(), file=sys.stderr)
        return 1
    except SettingsError as error:
        print(f"配置错误 / settings error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
