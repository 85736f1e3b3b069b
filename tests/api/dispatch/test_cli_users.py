"""``practice-circle users create``: the token it prints last opens the API."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

import geo
from api.cli import app


def test_users_create_prints_a_working_token(
    client: TestClient, db: str, cache_dir: Path, district: geo.District
) -> None:
    team_id = str(district.teams["team_id"].iloc[0])
    runner = CliRunner()
    res = runner.invoke(app, ["users", "create", "--role", "team", "--name", "队长",
                              "--team", team_id, "--database-url", db,
                              "--cache", str(cache_dir)])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip().splitlines()[-1]
    assert token.startswith("pc_")
    me = client.get("/users/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert {k: me[k] for k in ("id", "name", "role", "team_id")} == {
        "id": me["id"], "name": "队长", "role": "team", "team_id": team_id}
    assert me["role_zh"] == "志愿服务队" and me["phone_masked"] is None
    assert me["leads_teams"] == []

    res = runner.invoke(app, ["users", "create", "--role", "team", "--name", "x",
                              "--database-url", db, "--cache", str(cache_dir)])
    assert res.exit_code == 2 and "--team" in res.output
    res = runner.invoke(app, ["users", "create", "--role", "resident", "--name", "x",
                              "--team", "nope", "--database-url", db, "--cache", str(cache_dir)])
    assert res.exit_code == 2
    res = runner.invoke(app, ["users", "create", "--role", "volunteer", "--name", "x",
                              "--database-url", db, "--cache", str(cache_dir)])
    assert res.exit_code == 2 and "POST /volunteers" in res.output
