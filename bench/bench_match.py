"""Benchmark: CatalogIndex build time and match latency against catalog size, beside a plain BM25 baseline.

    python bench/bench_match.py [--sizes 1135,100000] [--queries 2000] [--json FILE] [--profile] [--profile-build]

Everything runs in one process, so the matcher's timings can be read as ratios against the
baseline's, measured on the same machine a moment apart. See bench/README.md for what each number
means and for results measured on this project's 2-core machines.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import bm25s
import jieba
import numpy as np

from guidebot.knowledge import matching as matching_module
from guidebot.knowledge.catalog import Catalog, Item
from guidebot.knowledge.importer import load_bundled_catalog
from guidebot.knowledge.matching import CatalogIndex, Decision

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "questions.jsonl"
WARM_ITEMS = 20

# Targets from the brief (reported, never asserted).
BUILD_TARGET_S = 1.0
P99_TARGET_MS = {1135: 5.0, 100_000: 20.0}

# ---------------------------------------------------------------------------------------------
# A large catalog that looks like a real one: every real item, then variants of real items as
# neighbouring counties, towns and streets would list them (岳池县…, 协兴镇…), in each situation
# (新办/变更/延续/注销/补办) and with the qualifiers real lists carry (（县级权限） …).

COUNTIES = ("广安区", "前锋区", "岳池县", "武胜县", "邻水县", "华蓥市", "广安市", "经开区")
TOWNS = (
    "协兴镇", "浓洞街道", "北辰街道", "万盛街道", "中桥街道", "枣山街道", "官盘街道", "花桥镇", "悦来镇",
    "恒升镇", "石笋镇", "白市镇", "大安镇", "龙台镇", "肖溪镇", "兴平镇", "井河镇", "彭家乡", "大龙镇",
    "东岳乡", "广福镇", "虎城镇", "郑山乡", "大有镇", "观阁镇", "桂兴镇", "代市镇", "观塘镇", "护安镇",
    "龙安乡", "穿石镇", "龙滩镇", "奎阁街道", "新桥街道", "广门乡", "天池镇", "九龙街道", "罗渡镇",
    "坛同镇", "高滩镇", "丰禾镇", "石垭镇", "乐善镇", "街子镇", "飞龙镇", "中和镇", "烈面镇", "沿口镇",
)
SITUATIONS = ("新办", "变更", "延续", "注销", "补办")
QUALIFIERS = (
    "（县级权限）", "（告知承诺制）", "（跨省通办）", "（全程网办）", "（容缺受理）", "（一件事一次办）",
    "（便民服务中心代办）", "（村级代办）", "（省内通办）", "（市级下放）", "（预约办理）",
)
_SITUATION_IN_NAME = re.compile("|".join(SITUATIONS) + "|核发|换发|补发|设立|登记")


def generated_catalog(base: Catalog, size: int, seed: int = 20240501) -> Catalog:
    """`size` items: the real ones first (all of them when size ≥ their count), then seeded variants.

    Names are unique; codes are unique and start with BENCH so they never meet a real code.
    """
    real = list(base.items)
    if size <= len(real):
        return Catalog(center=base.center, items=tuple(real[:size]))
    rng = random.Random(seed)
    names = {item.name for item in real}
    items = list(real)
    serial = 0
    while len(items) < size:
        source = rng.choice(real)
        prefix = _prefix(rng, source)
        name = source.name
        if not _SITUATION_IN_NAME.search(name) and rng.random() < 0.7:
            situation = rng.choice(SITUATIONS)
            name = name + (situation if rng.random() < 0.5 else f"（{situation}）")
        if rng.random() < 0.35:
            name += rng.choice(QUALIFIERS)
        name = prefix + name
        if name in names:
            continue
        names.add(name)
        serial += 1
        main = source.main_item or source.name
        items.append(Item(
            code=f"BENCH{serial:06d}-{source.code}",
            name=name,
            main_item=prefix + main,
            department=_department(prefix, source.department),
            type=source.type,
            kind=source.kind,
            source="bench",
        ))
    return Catalog(center=base.center, items=tuple(items))


def _prefix(rng: random.Random, source: Item) -> str:
    roll = rng.random()
    if roll < 0.15:
        return ""
    if roll < 0.65:
        return rng.choice(TOWNS)
    county = rng.choice(COUNTIES)
    if roll < 0.85 or not source.department.startswith("区"):
        return county
    return county + source.department[1:]  # 岳池县 + 行政审批局


def _department(prefix: str, department: str) -> str:
    if prefix.endswith(("镇", "乡", "街道")):
        return prefix + "便民服务中心"
    county = next((c for c in COUNTIES if prefix.startswith(c)), "")
    if county and department.startswith("区"):
        return county + department[1:]
    return department


# ---------------------------------------------------------------------------------------------
# The baseline: plain BM25 (bm25s) over jieba search-mode words plus single characters of item
# names. No normalization, no synonyms, no typo correction, no thresholds: top-1 is the answer.

_DEFAULT_JIEBA = jieba.Tokenizer()


def baseline_tokens(text: str) -> list[str]:
    words = [w for w in _DEFAULT_JIEBA.cut_for_search(text) if w.strip()]
    return words + ["#" + ch for ch in text if not ch.isspace()]


class PlainBM25:
    def __init__(self, catalog: Catalog) -> None:
        self.codes = [item.code for item in catalog.items]
        self.model = bm25s.BM25()
        self.model.index([baseline_tokens(item.name) for item in catalog.items], show_progress=False)

    def top1(self, text: str) -> str | None:
        ids = self.model.get_tokens_ids(baseline_tokens(text))
        if not ids:
            return None
        scores = self.model.get_scores(ids)
        best = int(np.argmax(scores))
        return self.codes[best] if scores[best] > 0 else None


# ---------------------------------------------------------------------------------------------
# Measuring.


@dataclass(frozen=True)
class Question:
    q: str
    gold: frozenset[str]
    kind: str


@dataclass
class Latency:
    """Percentiles of all samples (wall clock), of the thread's own CPU time, and of each question's
    fastest round (best_*: wall clock with most of other processes' interference filtered out)."""

    samples: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    cpu_p50_ms: float
    cpu_p99_ms: float
    best_p50_ms: float
    best_p99_ms: float


@dataclass
class SizeResult:
    size: int
    generate_s: float
    build_s: float  # CatalogIndex construction, wall clock
    build_cpu_s: float
    baseline_build_s: float
    baseline_build_cpu_s: float
    match: Latency
    baseline: Latency
    p50_ratio: float  # match / baseline, wall clock
    p99_ratio: float
    p99_target_ms: float | None
    match_by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)


def source_state() -> dict[str, object]:
    """The commit measured, and whether the matcher's files differ from it (a benchmark of a work tree)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10,
                                  check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    changed = git("status", "--porcelain", "--", "guidebot/knowledge").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD"), "matcher": matching_module.__file__,
            "knowledge_changed": [line.split(maxsplit=1)[-1] for line in changed]}


def read_questions(path: Path) -> list[Question]:
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            questions.append(Question(str(raw["q"]), frozenset(raw.get("gold") or ()), str(raw.get("kind", ""))))
    return questions


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def summarize(samples: Samples, questions: int) -> Latency:
    ordered, cpu = sorted(samples.wall), sorted(samples.cpu)
    best = sorted(min(samples.wall[i::questions]) for i in range(questions)) if samples.wall else []
    return Latency(len(ordered), round(percentile(ordered, 0.5), 3), round(percentile(ordered, 0.99), 3),
                   round(sum(ordered) / max(len(ordered), 1), 3), round(ordered[-1] if ordered else 0.0, 3),
                   round(percentile(cpu, 0.5), 3), round(percentile(cpu, 0.99), 3),
                   round(percentile(best, 0.5), 3), round(percentile(best, 0.99), 3))


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def by_kind(self) -> dict[str, dict[str, float]]:
        grouped: dict[str, list[float]] = {}
        for kind, value in zip(self.kinds, self.wall, strict=True):
            grouped.setdefault(kind, []).append(value)
        return {kind: {"p50_ms": round(percentile(sorted(v), 0.5), 3), "p99_ms": round(percentile(sorted(v), 0.99), 3)}
                for kind, v in sorted(grouped.items())}


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Wall-clock and process CPU seconds of one call, and its value."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def latencies(
    index: CatalogIndex, baseline: PlainBM25, questions: list[Question], rounds: int
) -> tuple[Samples, Samples]:
    """Matcher and baseline over every question, `rounds` times, interleaved question by question so
    that both see the same machine at nearly the same moment (what makes their ratio meaningful on a
    shared machine). The garbage collector stays on: its pauses are part of a real process's latency.
    """
    ours, theirs = Samples(), Samples()
    wall, cpu = time.perf_counter, time.thread_time
    runs = ((index.match, ours), (baseline.top1, theirs))
    for _ in range(rounds):
        gc.collect()
        for question in questions:
            for run, samples in runs:
                start, start_cpu = wall(), cpu()
                run(question.q)
                end, end_cpu = wall(), cpu()
                samples.wall.append((end - start) * 1000)
                samples.cpu.append((end_cpu - start_cpu) * 1000)
                samples.kinds.append(question.kind)
    return ours, theirs


def quality(index: CatalogIndex, baseline: PlainBM25, questions: list[Question]) -> dict[str, float]:
    in_scope = [q for q in questions if q.gold]
    answered = resolved = top1 = 0
    for question in in_scope:
        result = index.match(question.q)
        offered = [item.code for item in result.items]
        if result.decision is Decision.ANSWER and offered[0] in question.gold:
            answered += 1
        if result.decision is not Decision.UNKNOWN and question.gold & set(offered):
            resolved += 1
        if baseline.top1(question.q) in question.gold:
            top1 += 1
    n = max(len(in_scope), 1)
    return {"in_scope": len(in_scope), "match_answer_in_gold_pct": round(100 * answered / n, 1),
            "match_resolved_pct": round(100 * resolved / n, 1), "baseline_top1_in_gold_pct": round(100 * top1 / n, 1)}


def slowest(samples: Samples, questions: list[Question]) -> list[tuple[float, Question]]:
    """Every question with its median cpu time across rounds, slowest first."""
    per_question: list[list[float]] = [[] for _ in questions]
    for position, value in enumerate(samples.cpu):
        per_question[position % len(questions)].append(value)
    medians = [(sorted(v)[len(v) // 2], q) for v, q in zip(per_question, questions, strict=True)]
    return sorted(medians, key=lambda m: -m[0])


def profile_matches(index: CatalogIndex, texts: list[str], top: int = 20) -> str:
    """One round of matches under cProfile: the functions with the most own time, then by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for text in texts:
        index.match(text)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def profile_build(catalog: Catalog, top: int = 20) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    CatalogIndex(catalog)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Match latency against catalog size, beside a plain BM25 baseline.")
    parser.add_argument("--sizes", default="1135,100000", help="catalog sizes, comma-separated (default 1135,100000)")
    parser.add_argument("--queries", type=int, default=2000,
                        help="minimum latency samples per size; whole rounds over all questions (default 2000)")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="question set (default eval/questions.jsonl)")
    parser.add_argument("--seed", type=int, default=20240501, help="seed of the generated catalog")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one round of match() at each size (after its timings)")
    parser.add_argument("--profile-build", action="store_true",
                        help="also cProfile CatalogIndex construction at the largest size (slow: ≈ 2× that build)")
    args = parser.parse_args(argv)
    sizes = [int(s.strip().replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    run_start, run_cpu_start = time.perf_counter(), time.process_time()
    load_before = os.getloadavg()

    questions = read_questions(args.questions)
    texts = [q.q for q in questions]
    rounds = max(1, math.ceil(args.queries / max(len(texts), 1)))
    load_s, _, loaded = timed(load_bundled_catalog)
    assert isinstance(loaded, Catalog)
    bundled: Catalog = loaded

    # One-time costs, kept out of every timing below: the matcher's jieba dictionary (loaded by the
    # first index, built here on a 20-item catalog) and the baseline's own jieba tokenizer.
    warm_s, _, _ = timed(lambda: CatalogIndex(Catalog(center=bundled.center, items=bundled.items[:WARM_ITEMS])))
    baseline_warm_s, _, _ = timed(_DEFAULT_JIEBA.initialize)

    source = source_state()
    dirty = f", work tree changes in {', '.join(map(str, source['knowledge_changed']))}" \
        if source["knowledge_changed"] else ""
    print(f"guidebot match benchmark — commit {source['commit'] or '?'}{dirty}; matcher {source['matcher']}")
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load average {load_before[0]:.1f} at start; "
          f"{len(questions)} questions × {rounds} rounds per size")
    print(f"bundled catalog load ({len(bundled)} items) {load_s:.2f} s; one-time: matcher jieba dictionary + "
          f"first index ({WARM_ITEMS} items) {warm_s:.2f} s, baseline jieba dictionary {baseline_warm_s:.2f} s")
    sys.stdout.flush()

    results: list[SizeResult] = []
    reports: list[str] = []
    for size in sizes:
        generate_s, _, made = timed(lambda size=size: generated_catalog(bundled, size, args.seed))
        assert isinstance(made, Catalog)
        catalog = made
        gc.collect()
        build_s, build_cpu_s, built = timed(lambda catalog=catalog: CatalogIndex(catalog))
        assert isinstance(built, CatalogIndex)
        index = built
        baseline_build_s, baseline_build_cpu_s, made_baseline = timed(lambda catalog=catalog: PlainBM25(catalog))
        assert isinstance(made_baseline, PlainBM25)
        baseline = made_baseline
        for text in texts[:20]:  # first-call paths and caches, before timing
            index.match(text)
            baseline.top1(text)
        ours, theirs = latencies(index, baseline, questions, rounds)
        match_lat, base_lat = summarize(ours, len(questions)), summarize(theirs, len(questions))
        result = SizeResult(
            size=len(catalog), generate_s=round(generate_s, 3), build_s=round(build_s, 3),
            build_cpu_s=round(build_cpu_s, 3), baseline_build_s=round(baseline_build_s, 3),
            baseline_build_cpu_s=round(baseline_build_cpu_s, 3),
            match=match_lat, baseline=base_lat,
            p50_ratio=round(match_lat.p50_ms / base_lat.p50_ms, 1) if base_lat.p50_ms else math.inf,
            p99_ratio=round(match_lat.p99_ms / base_lat.p99_ms, 1) if base_lat.p99_ms else math.inf,
            p99_target_ms=P99_TARGET_MS.get(len(catalog)), match_by_kind=ours.by_kind(),
        )
        if len(catalog) == len(bundled):
            result.quality = quality(index, baseline, questions)
        results.append(result)
        print(f"  {len(catalog):>7,} items: generated {generate_s:.1f} s, index built {build_s:.2f} s "
              f"(cpu {build_cpu_s:.2f} s), baseline built {baseline_build_s:.2f} s (cpu {baseline_build_cpu_s:.2f} s), "
              f"match p50 {match_lat.p50_ms:.2f} ms p99 {match_lat.p99_ms:.2f} ms")
        sys.stdout.flush()
        slow = slowest(ours, questions)
        reports.append(f"slowest questions at {len(catalog):,} items (median cpu ms over {rounds} rounds): "
                       + "; ".join(f"{ms:.1f} {q.kind} ({len(q.q)} chars)" for ms, q in slow[:5]))
        if args.profile:
            reports.append(f"=== cProfile: one round of match() at {len(catalog):,} items ===\n"
                           + profile_matches(index, texts))
            tail = [q.q for _, q in slow[: max(1, len(slow) // 20)]]
            reports.append(f"=== cProfile: the slowest 5% ({len(tail)} questions, the p99 tail) at "
                           f"{len(catalog):,} items, 3 times each ===\n" + profile_matches(index, tail * 3, top=15))
        del index, baseline, built, made_baseline
        gc.collect()
        if args.profile_build and size == max(sizes):
            reports.append(f"=== cProfile: CatalogIndex construction at {len(catalog):,} items ===\n"
                           + profile_build(catalog))
        del catalog, made
        gc.collect()

    total_s = time.perf_counter() - run_start
    total_cpu_s = time.process_time() - run_cpu_start
    load_after = os.getloadavg()
    print()
    print(format_table(results))
    print(f"total run time {total_s:.1f} s (cpu {total_cpu_s:.1f} s); load average {load_after[0]:.1f} at the end"
          + (f" — above {os.cpu_count()}: other processes shared the cpus, wall-clock p99s are inflated"
             if max(load_before[0], load_after[0]) > (os.cpu_count() or 1) else ""))

    if args.json:
        payload = {
            "date": datetime.now().astimezone().isoformat(timespec="seconds"),
            "source": source, "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average_start": round(load_before[0], 2), "load_average_end": round(load_after[0], 2),
            "questions": len(questions), "rounds": rounds,
            "catalog_load_s": round(load_s, 3), "jieba_warm_s": round(warm_s, 3),
            "baseline_jieba_warm_s": round(baseline_warm_s, 3), "total_s": round(total_s, 1),
            "total_cpu_s": round(total_cpu_s, 1),
            "targets": {"build_s_at_1135": BUILD_TARGET_S, "p99_ms": P99_TARGET_MS},
            "sizes": [asdict(r) for r in results],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")

    for report in reports:
        print()
        print(report)
    return 0


def format_table(results: list[SizeResult]) -> str:
    header = (f"{'items':>8} {'build s':>8} │ {'match p50':>9} {'p99':>7} {'target':>6} {'cpu p99':>7} "
              f"{'best p99':>8} │ "
              f"{'bm25 p50':>8} {'p99':>6} │ {'×p50':>5} {'×p99':>5}")
    lines = [header, "─" * len(header)]
    for r in results:
        target = f"≤{r.p99_target_ms:g}" if r.p99_target_ms else "-"
        lines.append(f"{r.size:>8,} {r.build_s:>8.2f} │ {r.match.p50_ms:>9.2f} {r.match.p99_ms:>7.2f} {target:>6} "
                     f"{r.match.cpu_p99_ms:>7.2f} {r.match.best_p99_ms:>8.2f} │ "
                     f"{r.baseline.p50_ms:>8.2f} {r.baseline.p99_ms:>6.2f} │ "
                     f"{r.p50_ratio:>5.1f} {r.p99_ratio:>5.1f}")
    lines.append("latencies in ms, wall clock; cpu p99: the matching thread's own cpu time; best p99: over each "
                 "question's fastest round; ×p50, ×p99: match / bm25 wall clock, same process")
    for r in results:
        slow = sorted(r.match_by_kind.items(), key=lambda kv: -kv[1]["p99_ms"])[:3]
        lines.append(f"match p99 by kind at {r.size:,}: " + ", ".join(f"{k} {v['p99_ms']:.1f}" for k, v in slow))
    misses = [f"match p99 {r.match.p99_ms:.1f} ms > {r.p99_target_ms:g} ms at {r.size:,} items" for r in results
              if r.p99_target_ms and r.match.p99_ms > r.p99_target_ms]
    misses += [f"build {r.build_s:.2f} s ≥ {BUILD_TARGET_S:g} s at {r.size:,} items" for r in results
               if r.size == 1135 and r.build_s >= BUILD_TARGET_S]
    lines.append("targets missed: " + ("; ".join(misses) if misses else "none"))
    for r in results:
        if r.quality:
            q = r.quality
            lines.append(f"quality at {r.size:,} items, {int(q['in_scope'])} in-scope questions: "
                         f"match answers a gold item {q['match_answer_in_gold_pct']:.1f}% "
                         f"(answers or offers one {q['match_resolved_pct']:.1f}%); "
                         f"bm25 top-1 in gold {q['baseline_top1_in_gold_pct']:.1f}%")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
