"""Benchmark: case lookup latency at scale, and import throughput.

    python bench/bench_cases.py --rows 1240000 --db sqlite
    python bench/bench_cases.py --rows 1240000 --db postgres [--pg-url URL]
    python bench/bench_cases.py --rows 10000000 --db both

Steps, per database:

1. a fresh database at the latest schema (SQLite: a temporary file; PostgreSQL: a dedicated
   schema ``guidebot_bench`` that is dropped first);
2. ``--rows`` cases, each with one history entry, generated inside the database
   (recursive CTE / generate_series) — the fastest way to get there, and the same table layout
   and indexes the importer writes;
3. ``--lookups`` verified lookups of random existing cases through ``CaseLookup.verify``
   (the full path: rate-limit check, case, history, view), each from a new sender so no limit
   applies, then as many failing lookups (unknown numbers); p50/p99/max per path;
4. an import of a ``--import-rows`` CSV (half new cases, half status updates) into the full
   database: rows per second.

The target from the issue: p99 lookup ≤ 5 ms at 1.24 M cases.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guidebot.cases.importer import import_cases
from guidebot.cases.lookup import CaseLookup, Found, NotVerified
from guidebot.store.db import Store, open_store, upgrade

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BENCH_SCHEMA = "guidebot_bench"
ITEM_CODE = "511A0138000000"


@dataclass
class Result:
    database: str
    rows: int
    generate_s: float
    found_ms: list[float]
    not_verified_ms: list[float]
    import_rows: int
    import_s: float


def case_no(number: int) -> str:
    return f"BM{number:014d}"


def phone_last4(number: int) -> str:
    return f"{number % 10000:04d}"


SQLITE_GENERATE = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows)
INSERT INTO {table} {columns}
SELECT {select} FROM n
"""


def generate_sqlite(store: Store, rows: int) -> None:
    timestamp = "'2025-09-26 10:00:00.000000'"
    with store.engine.begin() as connection:
        connection.execute(
            text(
                SQLITE_GENERATE.format(
                    table="cases",
                    columns="(case_no, item_code, applicant_masked, phone_last4, id_last4, service_window, "
                    "accepted_at, status, status_at, updated_at)",
                    select=f"'BM' || printf('%014d', i), '{ITEM_CODE}', '张*', printf('%04d', i % 10000), "
                    f"printf('%04d', (i * 7) % 10000), '综合窗口3号', {timestamp}, '已受理', {timestamp}, "
                    f"{timestamp}",
                )
            ),
            {"rows": rows},
        )
        connection.execute(
            text(
                SQLITE_GENERATE.format(
                    table="case_events",
                    columns="(case_no, occurred_at, status, source, recorded_at)",
                    select=f"'BM' || printf('%014d', i), {timestamp}, '已受理', 'bench', {timestamp}",
                )
            ),
            {"rows": rows},
        )
    with store.engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def generate_postgres(store: Store, rows: int) -> None:
    timestamp = "timestamp '2025-09-26 10:00:00'"
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO cases (case_no, item_code, applicant_masked, phone_last4, id_last4, service_window, "
                "accepted_at, status, status_at, updated_at) "
                f"SELECT 'BM' || lpad(i::text, 14, '0'), '{ITEM_CODE}', '张*', lpad((i % 10000)::text, 4, '0'), "
                f"lpad(((i * 7) % 10000)::text, 4, '0'), '综合窗口3号', {timestamp}, '已受理', {timestamp}, "
                f"{timestamp} FROM generate_series(1, :rows) AS i"
            ),
            {"rows": rows},
        )
        connection.execute(
            text(
                "INSERT INTO case_events (case_no, occurred_at, status, source, recorded_at) "
                f"SELECT 'BM' || lpad(i::text, 14, '0'), {timestamp}, '已受理', 'bench', {timestamp} "
                "FROM generate_series(1, :rows) AS i"
            ),
            {"rows": rows},
        )
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE cases"))
        connection.execute(text("VACUUM ANALYZE case_events"))


def time_calls(call: Callable[[int], object], count: int, expect: type) -> list[float]:
    timings: list[float] = []
    for index in range(count):
        started = time.perf_counter()
        outcome = call(index)
        timings.append((time.perf_counter() - started) * 1000)
        if not isinstance(outcome, expect):
            raise SystemExit(f"unexpected lookup outcome {outcome!r}")
    return timings


def measure_lookups(store: Store, rows: int, lookups: int) -> tuple[list[float], list[float]]:
    lookup = CaseLookup(store, item_name=lambda code: None, promised_days=lambda code: 20)
    rng = random.Random(1240)
    picks = [rng.randint(1, rows) for _ in range(lookups)]
    # Warm-up: connection pool, statement caches, the first pages of the index.
    for number in picks[:200]:
        lookup.verify("bench", f"warm-{number}", case_no(number), phone_last4(number))
    found = time_calls(
        lambda i: lookup.verify("bench", f"found-{i}", case_no(picks[i]), phone_last4(picks[i])),
        lookups,
        Found,
    )
    missing = time_calls(
        lambda i: lookup.verify("bench", f"missing-{i}", case_no(rows + 1 + picks[i]), "0000"),
        lookups,
        NotVerified,
    )
    return found, missing


def write_import_file(path: Path, rows: int, first_number: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["办件编号", "事项编码", "申请人", "联系电话", "证件号码", "受理窗口", "受理时间", "办件状态",
             "状态时间", "备注"]
        )  # fmt: skip
        for offset in range(rows // 2):
            number = case_no(first_number + offset)
            writer.writerow(
                [number, ITEM_CODE, "张三", "13812345678", "11010119900101123X", "3号窗口", "2025-10-09 09:00",
                 "收件", "", ""]
            )  # fmt: skip
            writer.writerow([number, "", "", "", "", "", "", "补正", "2025-10-10 10:00", "户口簿复印件"])


def run(database: str, url: str, rows: int, lookups: int, import_rows: int, workdir: Path) -> Result:
    if database == "postgres":
        upgrade(url)
    store = open_store(url)
    try:
        print(f"[{database}] generating {rows:,} cases …", flush=True)
        started = time.perf_counter()
        (generate_sqlite if database == "sqlite" else generate_postgres)(store, rows)
        generate_s = time.perf_counter() - started
        print(
            f"[{database}] generated in {generate_s:.1f} s; measuring {lookups:,} lookups per path …",
            flush=True,
        )
        found, missing = measure_lookups(store, rows, lookups)
        import_path = workdir / f"import-{database}.csv"
        write_import_file(import_path, import_rows, first_number=rows * 3)
        print(f"[{database}] importing {import_rows:,} rows …", flush=True)
        started = time.perf_counter()
        result = import_cases(store, import_path)
        import_s = time.perf_counter() - started
        if not result.ok:
            raise SystemExit(f"import failed: {result.errors[:5]}")
        return Result(database, rows, generate_s, found, missing, import_rows, import_s)
    finally:
        store.close()


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(share * 1000) - 1]


def print_table(results: list[Result]) -> None:
    header = (
        f"{'database':<10} {'cases':>11} {'generate s':>10} {'found p50':>9} {'found p99':>9} {'found max':>9} "
        f"{'miss p50':>9} {'miss p99':>9} {'import rows/s':>13}"
    )
    print()
    print(header)
    print("-" * len(header))
    for result in results:
        print(
            f"{result.database:<10} {result.rows:>11,} {result.generate_s:>10.1f} "
            f"{percentile(result.found_ms, 0.5):>7.2f}ms {percentile(result.found_ms, 0.99):>7.2f}ms "
            f"{max(result.found_ms):>7.2f}ms "
            f"{percentile(result.not_verified_ms, 0.5):>7.2f}ms {percentile(result.not_verified_ms, 0.99):>7.2f}ms "
            f"{result.import_rows / result.import_s:>13,.0f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_240_000, help="cases to generate (default 1,240,000)")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--lookups", type=int, default=2000, help="timed lookups per path (default 2000)")
    parser.add_argument(
        "--import-rows", type=int, default=100_000, help="rows in the import file (default 100,000)"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL URL (default {DEFAULT_PG_URL})")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the SQLite file and CSV go (default: temp)"
    )
    args = parser.parse_args(argv)

    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="guidebot-bench-") as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        for database in databases:
            if database == "sqlite":
                sqlite_path = workdir / "bench.sqlite3"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
                results.append(run("sqlite", f"sqlite:///{sqlite_path}", args.rows, args.lookups,
                                   args.import_rows, workdir))  # fmt: skip
            else:
                admin = create_engine(args.pg_url)
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA IF EXISTS "{BENCH_SCHEMA}" CASCADE'))
                    connection.execute(text(f'CREATE SCHEMA "{BENCH_SCHEMA}"'))
                separator = "&" if "?" in args.pg_url else "?"
                url = f"{args.pg_url}{separator}options={quote(f'-csearch_path={BENCH_SCHEMA}')}"
                try:
                    results.append(run("postgres", url, args.rows, args.lookups, args.import_rows, workdir))
                finally:
                    with admin.begin() as connection:
                        connection.execute(text(f'DROP SCHEMA IF EXISTS "{BENCH_SCHEMA}" CASCADE'))
                    admin.dispose()
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
