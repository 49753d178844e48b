"""The `guidebot` command, run as a citizen or clerk would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from guidebot.settings import Settings
from guidebot.store.db import open_store
from tests.conftest import DATA, REPO


def run(*args: str, stdin: str = "", data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GUIDEBOT_DATA_DIR": str(data_dir)}
    env.pop("GUIDEBOT_CATALOG", None)
    return subprocess.run([sys.executable, "-m", "guidebot.cli", *args], input=stdin, capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)


def test_ask_answers_in_one_message(tmp_path: Path) -> None:
    result = run("ask", "结婚登记要带什么", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "【申请材料】" in result.stdout and "居民身份证" in result.stdout


def test_match_writes_one_json_line_per_message(tmp_path: Path) -> None:
    messages = "办身份证要带什么\n你好啊\n残疾人补贴\nSX2025092600001\n"
    result = run("match", "--catalog", str(DATA / "small.yaml"), "--top", "3", stdin=messages, data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["q"] for line in lines] == messages.splitlines()
    assert lines[0]["decision"] == "answer" and lines[0]["items"] == ["T-001"]
    assert lines[0]["field"] == "materials" and len(lines[0]["scores"]) == 1
    assert lines[1] == {"q": "你好啊", "decision": "unknown", "items": [], "scores": [], "field": "all"}
    assert lines[3]["decision"] == "unknown"


def test_match_clarify_lists_the_choices(tmp_path: Path) -> None:
    result = run("match", "--top", "5", stdin="营业执照变更\n", data_dir=tmp_path)
    line = json.loads(result.stdout)
    assert line["decision"] == "clarify" and len(line["items"]) == 2 == len(line["scores"])


def test_eval_prints_rates_per_kind(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in [
        {"q": "办身份证", "gold": ["T-001"], "kind": "plain"},
        {"q": "火车票", "gold": [], "kind": "out_of_scope"},
        {"q": "无犯罪记录证明", "gold": ["T-002"], "kind": "plain"},
    ]), encoding="utf-8")
    result = run("eval", "--catalog", str(DATA / "small.yaml"), "--questions", str(questions), data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line and line[0] != "l"}
    assert rows["plain"][1:6] == ["2", "50.0", "50.0", "50.0", "0.0"]
    assert rows["out_of_scope"][-1] == "100.0"
    assert "p99" in result.stdout


def test_an_item_list_is_matched_as_the_bot_would_use_it(tmp_path: Path) -> None:
    """A system's CSV export carries no center block: once imported it keeps the bundled center (its
    place among them), so `match --catalog` reads 住在广安 as here, not as another place's story."""
    message = "我是南充户口 住在广安 身份证快过期了不想跑回去"
    result = run("match", "--catalog", str(REPO / "guidebot" / "data" / "guangan-items.csv"), stdin=message + "\n",
                 data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decision"] != "unknown", result.stdout


def test_catalog_check_and_import_report_every_bad_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("事项编码,事项名称,承诺时限\nA,身份证,很快\n,户口,\n", encoding="gbk")
    for command in ("check", "import"):
        result = run("catalog", command, str(bad), data_dir=tmp_path)
        assert result.returncode == 1
        assert "第 2 行，承诺时限" in result.stderr and "第 3 行，事项编码" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "catalog.yaml").exists()


def test_catalog_import_then_ask_uses_it(tmp_path: Path) -> None:
    result = run("catalog", "import", str(DATA / "small.yaml"), data_dir=tmp_path)
    assert result.returncode == 0 and "6 个事项" in result.stdout
    answer = run("ask", "领结婚证", data_dir=tmp_path)
    assert "【结婚登记】民政局" in answer.stdout


def test_the_centers_own_synonyms_are_checked_then_used(tmp_path: Path) -> None:
    """Staff read the unanswered questions, add what citizens call an item, and the bot understands it."""
    assert "没有找到" in run("ask", "想领个红本本", data_dir=tmp_path).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries:\n  - say: [红本本]\n    means: [不存在的事项]\n  - say: [证]\n    means: [婚姻登记]\n"
                   "  - means: [婚姻登记]\n", encoding="utf-8")
    for command in ("check", "import"):
        result = run("synonyms", command, str(bad), data_dir=tmp_path)
        assert result.returncode == 1, result.stdout
        assert "第 1 条，means" in result.stderr and "不存在的事项" in result.stderr
        assert "第 2 条，say" in result.stderr and "第 3 条，say" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "synonyms.yaml").exists()

    good = tmp_path / "ours.yaml"
    good.write_text("entries:\n  - say: [红本本, 领个红本]\n    means: [婚姻登记]\n", encoding="utf-8")
    result = run("synonyms", "import", str(good), data_dir=tmp_path)
    assert result.returncode == 0 and "1 条同义词" in result.stdout, result.stderr
    assert "中国内地公民婚姻登记" in run("ask", "想领个红本本", data_dir=tmp_path).stdout


def test_real_messages_become_asks_and_things_not_done_here_are_declined(tmp_path: Path) -> None:
    """From /unanswered to a fix: staff file a citizen's real message under the item it meant, and
    similar messages are understood; a thing the center does not handle is declined by name."""
    message = "过年想在楼下空坝子卖几天对联"
    assert "临时便民服务摊点设置" not in run("ask", message, data_dir=tmp_path).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("asks:\n  - item: 不存在的事项\n    asks: [摆个烧烤摊]\n  - item: 临时便民服务摊点设置\n"
                   "outside:\n  - topic: 代办签证\n    unless: 签证\n    asks: [帮我办个签证]\n", encoding="utf-8")
    result = run("synonyms", "check", str(bad), data_dir=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "asks 第 1 条" in result.stderr and "不存在的事项" in result.stderr
    assert "asks 第 2 条" in result.stderr and "outside 第 1 条" in result.stderr

    good = tmp_path / "ours.yaml"
    good.write_text("asks:\n  - item: 临时便民服务摊点设置\n"
                    "    asks: [过年在楼下坝子摆摊卖对联要办啥手续, 春节前想在街边摆几天摊卖年货,"
                    " 小区空坝子摆摊卖东西找哪个批]\n"
                    "outside:\n  - topic: 广场舞场地\n    unless: [广场舞]\n    asks: [跳广场舞的场地找哪个申请,"
                    " 广场舞音响太吵了找哪个, 想组织广场舞队要去哪登记]\n", encoding="utf-8")
    result = run("synonyms", "import", str(good), data_dir=tmp_path)
    assert result.returncode == 0 and "3 条问法示例" in result.stdout and "1 件本中心不办的事" in result.stdout, result
    assert "临时便民服务摊点设置" in run("ask", message, data_dir=tmp_path).stdout
    assert "“广场舞场地”的事不在" in run("ask", "我们想跳广场舞，场地找哪个申请", data_dir=tmp_path).stdout


def test_unanswered_questions_come_out_as_a_draft_staff_fill_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    monkeypatch.setenv("GUIDEBOT_DATA_DIR", str(tmp_path))
    store = open_store(Settings.load().database_url)
    try:
        for _ in range(3):
            store.log_query("sms", "13800000001", "晚上想在小区门口摆个烧烤摊，电话13812345678", "unknown")
        store.log_query("sms", "13800000002", "我们想跳广场舞，场地找哪个申请", "unknown")
        store.log_query("sms", "13800000003", "身份证怎么办", "answer")
    finally:
        store.close()
    result = run("synonyms", "draft", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    draft = yaml.safe_load(result.stdout)
    assert [entry["asks"] for entry in draft["asks"]] == [["晚上想在小区门口摆个烧烤摊，电话138****5678"],
                                                          ["我们想跳广场舞，场地找哪个申请"]]
    assert "问了 3 次" in result.stdout and "13812345678" not in result.stdout
    unfilled = tmp_path / "draft.yaml"
    unfilled.write_text(result.stdout, encoding="utf-8")
    assert "缺少事项名称" in run("synonyms", "check", str(unfilled), data_dir=tmp_path).stderr
    # Staff file the first under the item it meant and move the second to what the center does not do.
    filled = {"asks": [{"item": "临时便民服务摊点设置", "asks": draft["asks"][0]["asks"]}],
              "outside": [{"topic": "广场舞场地", "unless": [], "asks": draft["asks"][1]["asks"]}]}
    unfilled.write_text(yaml.safe_dump(filled, allow_unicode=True), encoding="utf-8")
    checked = run("synonyms", "check", str(unfilled), data_dir=tmp_path)
    assert checked.returncode == 0 and "1 条问法示例、1 件本中心不办的事" in checked.stdout, checked


def test_chat_reads_until_end_of_input(tmp_path: Path) -> None:
    result = run("chat", stdin="你好\n食品经营许可\n1\n退出\n", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "办事指南助手" in result.stdout and "再见" in result.stdout
    assert "食品(含保健食品)经营许可" in result.stdout


def test_bad_settings_are_a_clear_error(tmp_path: Path) -> None:
    env_result = subprocess.run([sys.executable, "-m", "guidebot.cli", "ask", "x"], capture_output=True, text=True,
                                env={**os.environ, "GUIDEBOT_DATABASE_URL": "not a url",
                                     "GUIDEBOT_DATA_DIR": str(tmp_path)}, cwd=REPO, timeout=60)
    assert env_result.returncode == 2
    assert "GUIDEBOT_DATABASE_URL" in env_result.stderr and "Traceback" not in env_result.stderr


def test_outbox_run_refuses_a_malformed_telegram_token(tmp_path: Path) -> None:
    env = {**os.environ, "GUIDEBOT_DATA_DIR": str(tmp_path), "GUIDEBOT_TELEGRAM_TOKEN": "not-a-token"}
    result = subprocess.run([sys.executable, "-m", "guidebot.cli", "outbox", "run", "--once"], capture_output=True,
                            text=True, env=env, cwd=REPO, timeout=120)
    assert result.returncode == 2
    assert "GUIDEBOT_TELEGRAM_TOKEN is malformed" in result.stderr
    assert "not-a-token" not in result.stderr + result.stdout and "Traceback" not in result.stderr
