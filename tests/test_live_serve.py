"""Live writes against a real ``recommender serve --workers 2``: every worker serves them, a restart replays them.

Real server processes on 127.0.0.1, stopped by PID. Waits are bounded waits
for a condition (every answer on a fresh connection agrees, within a
generous deadline); no timing is asserted.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from recommender.bundle import current_version

from .conftest import DEMO_CORPUS
from .servers import Server, http, running_server
from .test_e2e import train_cli

pytestmark = pytest.mark.slow

TOKEN = "live-serve-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"RECOMMENDER_ADMIN_TOKEN": TOKEN, "RECOMMENDER_LOG_POLL_INTERVAL": "0.05"}
DEADLINE = 30.0  # seconds
AGREEING = 24  # answers in a row on fresh connections: with two workers, both answered some
NEW_ID = "live/saltmere-ferry-strike"
NEW = {
    "title": "Saltmere ferry crews strike over the night crossing",
    "body": "Crews of the Saltmere Lines night ferry to the outer islands walked out on Monday, and the "
    "operator cancelled the late crossing from the harbour. Islanders said the ferry timetable left them "
    "without a boat after the last train.",
    "section": "travel",
    "tags": ["ferries", "saltmere-islands"],
    "published_at": "2026-07-01",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("live-serve") / "models"
    train_cli(DEMO_CORPUS, models)
    return models


def status_of(server: Server, path: str) -> int:
    return http("GET", server.url(path), headers={"Connection": "close"}, timeout=10).status


def wait_until_every_answer(server: Server, path: str, status: int) -> None:
    """AGREEING answers in a row (fresh connections, so any worker may answer) with ``status``."""
    deadline = time.monotonic() + DEADLINE
    agreeing = 0
    seen: list[int] = []
    while agreeing < AGREEING:
        got = status_of(server, path)
        seen.append(got)
        agreeing = agreeing + 1 if got == status else 0
        assert time.monotonic() < deadline, f"{path}: not {status} on every worker; last answers {seen[-12:]}"


def boxes_with(server: Server, article_id: str) -> list[str]:
    listing = [json.loads(line)["id"] for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines() if line]
    found = []
    for source in listing:
        reply = server.get(f"/v1/articles/{source}/related?limit=50")
        if reply.status == 200 and article_id in {item["id"] for item in reply.json()["items"]}:
            found.append(source)
    return found


def test_writes_reach_both_workers_and_survive_a_restart(template: Path, tmp_path: Path) -> None:
    models = Path(shutil.copytree(template, tmp_path / "models", symlinks=True))
    base = current_version(models)
    with running_server(models, env=ENV, workers=2) as server:
        reply = server.request(
            "PUT", f"/v1/articles/{NEW_ID}", json.dumps(NEW).encode(), {**AUTH, "Content-Type": "application/json"}
        )
        assert reply.status == 201, reply.body
        assert reply.json() == {"id": NEW_ID, "seq": 1, "model_version": f"{base}+1"}
        wait_until_every_answer(server, f"/v1/articles/{NEW_ID}", 200)
        assert server.get(f"/v1/articles/{NEW_ID}/related").json()["items"]
        assert boxes_with(server, NEW_ID)  # some ferry article takes it into its box
        victim = "biz-saltmere-lines-fare-rise"
        assert server.request("DELETE", f"/v1/articles/{victim}", headers=AUTH).status == 204
        wait_until_every_answer(server, f"/v1/articles/{victim}", 404)
        assert not boxes_with(server, victim)
    with running_server(models, env=ENV, workers=2) as server:
        wait_until_every_answer(server, f"/v1/articles/{NEW_ID}", 200)
        wait_until_every_answer(server, f"/v1/articles/{victim}", 404)
        summary = server.get("/v1/model").json()
        assert summary["version"] == f"{base}+2" and summary["log_seq"] == 2
        assert summary["drift"]["added"] == 1 and summary["drift"]["deleted"] == 1
