"""Command-line subcommands for the store and cases; ``guidebot/cli.py`` calls :func:`register`.

    guidebot db upgrade
    guidebot cases import FILE
    guidebot cases show NUMBER
    guidebot cases set-status NUMBER STATUS [--note TEXT] [--by WHO]

Each handler takes the parsed arguments, prints, and returns the process exit code.  Output
never shows an applicant's full name, nor the phone/ID digits used to verify a lookup: what a
terminal shows ends up in tickets and chat screenshots.
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guidebot.cases.importer import import_cases
from guidebot.cases.lookup import build_case_view, render_case_view
from guidebot.cases.staff import CaseNotFound, UnknownStatus, get_case, set_status
from guidebot.cases.statuses import CaseStatus
from guidebot.store.db import default_database_url, now, open_store, upgrade

__all__ = ["cmd_cases_import", "cmd_cases_set_status", "cmd_cases_show", "cmd_db_upgrade", "register"]

_MAX_ERRORS_SHOWN = 50

ItemName = Callable[[str], str | None]
PromisedDays = Callable[[str], int | None]


def _no_item_name(_code: str) -> str | None:
    return None


def _no_promised_days(_code: str) -> int | None:
    return None


def _add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=None,
        help="数据库地址（默认取环境变量 GUIDEBOT_DATABASE_URL，否则为用户数据目录下的 SQLite 文件）",
    )


def register(
    subparsers: Any,
    item_name: ItemName | None = None,
    promised_days: PromisedDays | None = None,
) -> None:
    """Add ``db`` and ``cases`` to an argparse subparsers object.

    ``item_name``/``promised_days`` look an item code up in the catalog (the knowledge core);
    without them ``cases show`` falls back to the import file's item name and per-case limit.
    Handlers are set as ``func`` on the parsed namespace.
    """
    hooks = {"item_name": item_name or _no_item_name, "promised_days": promised_days or _no_promised_days}

    db_parser = subparsers.add_parser("db", help="数据库维护")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    upgrade_parser = db_commands.add_parser("upgrade", help="把数据库结构升级到最新版本（Alembic 迁移）")
    _add_database_option(upgrade_parser)
    upgrade_parser.set_defaults(func=cmd_db_upgrade)

    cases_parser = subparsers.add_parser("cases", help="办件：导入、查看、改状态")
    cases_commands = cases_parser.add_subparsers(dest="cases_command", required=True)

    import_parser = cases_commands.add_parser(
        "import", help="从审批系统导出的 CSV/XLSX 导入办件和状态更新（全部成功或全部不导入）"
    )
    import_parser.add_argument("file", type=Path, help="CSV（UTF-8 或 GB18030）或 XLSX 文件")
    _add_database_option(import_parser)
    import_parser.set_defaults(func=cmd_cases_import, **hooks)

    show_parser = cases_commands.add_parser("show", help="查看一个办件及其办理记录")
    show_parser.add_argument("number", help="办件编号")
    _add_database_option(show_parser)
    show_parser.set_defaults(func=cmd_cases_show, **hooks)

    status_parser = cases_commands.add_parser("set-status", help="修改办件状态（记入办理记录）")
    status_parser.add_argument("number", help="办件编号")
    status_parser.add_argument("status", help="新状态：" + "、".join(status.value for status in CaseStatus))
    status_parser.add_argument("--note", default=None, help="说明：补正材料清单、不予受理/不予许可的理由等")
    status_parser.add_argument("--by", default=None, help="操作人（默认当前系统用户）")
    _add_database_option(status_parser)
    status_parser.set_defaults(func=cmd_cases_set_status, **hooks)


def _notify(store: Any, changes: list[Any], item_name: ItemName) -> int:
    """Queue progress notices for the subscribers of changed cases (idempotent; see outbox.notify)."""
    from guidebot.outbox.notify import notify_status_changes

    return notify_status_changes(store, changes, item_name)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Bring the database schema up to date."""
    url = args.database_url or default_database_url()
    revision = upgrade(url)
    print(f"数据库已是最新结构（版本 {revision}）")
    return 0


def cmd_cases_import(args: argparse.Namespace) -> int:
    """Import a case export file, all or nothing."""
    if not args.file.is_file():
        print(f"找不到文件：{args.file}")
        return 2
    store = open_store(args.database_url)
    try:
        result = import_cases(store, args.file)
        notified = _notify(store, result.changes, args.item_name) if result.ok else 0
    finally:
        store.close()
    if result.errors:
        print(f"导入失败，未写入任何数据：{len(result.errors)} 处错误")
        for error in result.errors[:_MAX_ERRORS_SHOWN]:
            print(f"  {error}")
        if len(result.errors) > _MAX_ERRORS_SHOWN:
            print(f"  ……另有 {len(result.errors) - _MAX_ERRORS_SHOWN} 处错误")
        return 1
    print(
        f"导入完成：{result.rows} 行，新办件 {result.cases_created} 件，更新 {result.cases_updated} 件，"
        f"新增办理记录 {result.events_added} 条，状态变化 {len(result.changes)} 件"
    )
    if result.ignored_columns:
        print("  未使用的列：" + "、".join(result.ignored_columns))
    if notified:
        print(f"  已为订阅者排队进度通知 {notified} 条")
    return 0


def cmd_cases_show(args: argparse.Namespace) -> int:
    """Show one case with its full history (who changed what)."""
    store = open_store(args.database_url)
    try:
        record = get_case(store, args.number)
    finally:
        store.close()
    if record is None:
        print(f"没有办件编号为 {args.number} 的办件")
        return 1
    case = record.case
    view = build_case_view(case, record.events, args.item_name, args.promised_days, now().date())
    lines = render_case_view(view)
    lines[1] = f"事项：{view.item_name}（{case.item_code}）"
    registered = "、".join(
        label for label, value in (("手机号后4位", case.phone_last4), ("证件号后4位", case.id_last4)) if value
    )
    lines += [
        f"受理窗口：{case.service_window or '—'}",
        f"受理时间：{case.accepted_at:%Y-%m-%d %H:%M}",
        f"查询验证：已登记{registered}" if registered else "查询验证：未登记（无法自助查询）",
        "办理记录：",
    ]
    for event in record.events:
        note = f"  {event.note}" if event.note else ""
        lines.append(f"  {event.occurred_at:%Y-%m-%d %H:%M}  {CaseStatus(event.status).label}  [{event.source}]{note}")
    print("\n".join(lines))
    return 0


def cmd_cases_set_status(args: argparse.Namespace) -> int:
    """Change a case's status; the change is kept in the history with who made it."""
    by = args.by or getpass.getuser()
    store = open_store(args.database_url)
    try:
        change = set_status(store, args.number, args.status, args.note, by)
        _notify(store, [change], args.item_name)
    except (CaseNotFound, UnknownStatus) as error:
        print(error)
        return 1
    finally:
        store.close()
    old = change.old_status.label if change.old_status else "—"
    print(f"{change.case_no}：{old} → {change.new_status.label}（操作人 {by}，已记入办理记录）")
    return 0
