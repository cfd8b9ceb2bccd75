"""Pairwise judges: the API judge against HTTP servers on 127.0.0.1 (good, erroring, garbage), gold and RM judges."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from seq2seq_rm.judges import GoldJudge, verdicts_to_win_rate
from seq2seq_rm.judges.api import APIJudge, JudgeAPIError, parse_choice
from seq2seq_rm.tasks import SafetyTask

KEY = "sk-test-secret-123"
Reply = tuple[int, str]  # status, body


def completion(text: str) -> str:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})


def prefers_good(request: dict) -> Reply:
    """A sensible judge: picks the response that contains the word GOOD."""
    content = request["messages"][-1]["content"]
    a = content.split("[RESPONSE A]")[1].split("[RESPONSE B]")[0]
    return 200, completion("A" if "GOOD" in a else "B")


@contextmanager
def judge_server(answer: Callable[[dict], Reply]) -> Iterator[dict]:
    seen: dict = {"requests": 0, "auth": set()}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen["requests"] += 1
            seen["auth"].add(self.headers.get("Authorization"))
            seen["path"] = self.path
            status, text = answer(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


PROMPTS = ["question one", "question two", "question three"]
GOOD = ["GOOD answer", "meh", "GOOD too"]
BAD = ["bad answer", "GOOD here", "bad again"]


def test_api_judge_asks_both_orders_and_caches(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("JUDGE_KEY", KEY)
    with judge_server(prefers_good) as server:
        judge = APIJudge(server["url"], "judge-model", api_key_env="JUDGE_KEY", cache_dir=str(tmp_path / "cache"),
                         backoff_s=0.0)
        assert judge.compare(PROMPTS, GOOD, BAD) == [1.0, 0.0, 1.0]
        assert server["requests"] == 6 and server["path"] == "/v1/chat/completions"
        assert server["auth"] == {f"Bearer {KEY}"}
        again = APIJudge(server["url"], "judge-model", api_key_env="JUDGE_KEY", cache_dir=str(tmp_path / "cache"))
        assert again.compare(PROMPTS, GOOD, BAD) == [1.0, 0.0, 1.0]
        assert server["requests"] == 6 and again.statistics()["cache_hits"] == 6  # the rerun cost nothing
    cached = " ".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert KEY not in cached and KEY not in caplog.text


def test_position_bias_cancels_to_a_tie(tmp_path):
    with judge_server(lambda request: (200, completion("A"))) as server:
        judge = APIJudge(server["url"], "m", backoff_s=0.0)
        assert judge.compare(PROMPTS, GOOD, BAD) == [0.5, 0.5, 0.5]


def test_transient_errors_are_retried(tmp_path):
    calls = {"n": 0}

    def flaky(request: dict) -> Reply:
        calls["n"] += 1
        return (503, "busy") if calls["n"] % 2 else prefers_good(request)

    with judge_server(flaky) as server:
        judge = APIJudge(server["url"], "m", backoff_s=0.0, max_concurrency=1)
        assert judge.compare(PROMPTS, GOOD, BAD) == [1.0, 0.0, 1.0]
        assert judge.statistics()["retries"] == 6


def test_a_server_that_keeps_failing_stops_with_a_clear_error_and_keeps_answers(tmp_path):
    with judge_server(lambda request: (500, "boom")) as server:
        judge = APIJudge(server["url"], "m", backoff_s=0.0, max_retries=2, cache_dir=str(tmp_path))
        with pytest.raises(JudgeAPIError, match="failed 3 times; last problem: HTTP 500"):
            judge.compare(PROMPTS[:1], GOOD[:1], BAD[:1])
    with judge_server(lambda request: (401, "bad key")) as server:
        with pytest.raises(JudgeAPIError, match="HTTP 401"):
            APIJudge(server["url"], "m", backoff_s=0.0).compare(PROMPTS[:1], GOOD[:1], BAD[:1])


def test_garbage_answers_are_counted_invalid_and_garbage_replies_retried():
    with judge_server(lambda request: (200, completion("I think both are fine"))) as server:
        judge = APIJudge(server["url"], "m", backoff_s=0.0)
        assert judge.compare(PROMPTS, GOOD, BAD) == [0.5, 0.5, 0.5]
        assert judge.statistics()["invalid"] == 6
    with judge_server(lambda request: (200, "<html>not json</html>")) as server:
        with pytest.raises(JudgeAPIError, match="without choices"):
            APIJudge(server["url"], "m", backoff_s=0.0, max_retries=1).compare(PROMPTS[:1], GOOD[:1], BAD[:1])


def test_unreachable_endpoint_fails_after_retries():
    judge = APIJudge("http://127.0.0.1:9/v1", "m", backoff_s=0.0, max_retries=1, timeout_s=2)
    with pytest.raises(JudgeAPIError, match="ConnectError"):
        judge.compare(PROMPTS[:1], GOOD[:1], BAD[:1])


@pytest.mark.parametrize(("text", "choice"), [
    ("A", "A"), (" b.", "B"), ("**A**", "A"), ("Neither", None), ("", None), ("Both are fine", None),
    ("Answer: B", "B"), ("Actually, B is better", "B"), ("A or B", None), ("Response A.", "A"), ("Absolutely", None),
])
def test_parse_choice(text, choice):
    assert parse_choice(text) == choice


def test_gold_judge_prefers_the_higher_utility():
    task = SafetyTask(n_sft=10, n_pairs=10, n_rl_prompts=4, n_test_prompts=4)
    prompt = task.generate().test_prompts[0]
    probes = task.probe_responses(prompt.text)
    best = max(probes, key=lambda k: task.judge(prompt.text, probes[k]).utility)
    worst = min(probes, key=lambda k: task.judge(prompt.text, probes[k]).utility)
    verdicts = GoldJudge(task).compare([prompt.text] * 2, [probes[best], probes[worst]], [probes[worst], probes[best]])
    assert verdicts == [1.0, 0.0] and verdicts_to_win_rate(verdicts) == 0.5


def test_non_text_content_fails_naming_the_endpoint_and_field():
    reply = json.dumps({"choices": [{"message": {"content": 42}}]})
    with judge_server(lambda request: (200, reply)) as server:
        with pytest.raises(JudgeAPIError, match=r"message\.content is a int"):
            APIJudge(server["url"], "m", backoff_s=0.0).compare(PROMPTS[:1], GOOD[:1], BAD[:1])
    parts = json.dumps({"choices": [{"message": {"content": [{"type": "text", "text": "B"}]}}]})
    with judge_server(lambda request: (200, parts)) as server:
        assert APIJudge(server["url"], "m", backoff_s=0.0).compare(PROMPTS[:1], GOOD[:1], BAD[:1]) == [0.5]


def test_an_echoed_key_is_redacted(monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-secret-123")
    with judge_server(lambda request: (401, "bad key: Bearer sk-secret-123")) as server:
        with pytest.raises(JudgeAPIError) as error:
            APIJudge(server["url"], "m", api_key_env="JUDGE_TEST_KEY", backoff_s=0.0).compare(
                PROMPTS[:1], GOOD[:1], BAD[:1])
    assert "sk-secret-123" not in str(error.value) and "***" in str(error.value)


@pytest.mark.parametrize("accuracy,n,weak", [(0.5, 10, True), (0.9, 10, True), (0.55, 500, True), (0.7, 200, False),
                                             (None, 10, False)])
def test_a_judge_rm_that_barely_beats_chance_or_saw_few_pairs_is_flagged(accuracy, n, weak):
    from seq2seq_rm.stages.judge import weak_judge_warning

    warning = weak_judge_warning(accuracy, n)
    assert (warning is not None) == weak
    if weak:
        assert f"{accuracy:.2f} on {n} pairs" in warning and "judge=api" in warning
