"""`regionreasoner serve`: settings checked before anything loads, and a real server process end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from regionreasoner.agent.cli import main

TOKEN = "cli-test-token-0123456789"
TURN = (
    "<scene> shapes </scene>\n<focus> a box </focus>\n<think> right of bbox=[84, 84, 252, 252] </think>\n"
    '<answer>[{"bbox_2d": [420, 84, 588, 252], "point_2d": [504, 168]}]</answer>'
)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--scripted", "S"], "requires bearer tokens"),
        (["serve", "--scripted", "S", "--no-auth", "--host", "0.0.0.0"], "loopback addresses only"),
        (["serve", "--scripted", "S", "--token-file", "WEAK"], "is refused"),
        (["serve", "--scripted", "S", "--token-file", "OK", "--max-queue", "-1"], "--max-queue"),
    ],
)
def test_bad_settings_are_one_line_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGIONREASONER_TOKENS", raising=False)
    (tmp_path / "s.json").write_text(json.dumps([TURN]))
    (tmp_path / "weak.txt").write_text("alice=short\n")
    (tmp_path / "ok.txt").write_text(f"alice={TOKEN}\n")
    paths = {"S": tmp_path / "s.json", "WEAK": tmp_path / "weak.txt", "OK": tmp_path / "ok.txt"}
    assert main([str(paths.get(a, a)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_served_process_answers_with_auth(tmp_path: Path, servers: SimpleNamespace) -> None:
    (tmp_path / "s.json").write_text(json.dumps([TURN]))
    (tmp_path / "tokens.txt").write_text(f"# who=token\nalice={TOKEN}\n")
    port = servers.free_port()
    args = [sys.executable, "-m", "regionreasoner.agent.cli", "serve", "--scripted", str(tmp_path / "s.json")]
    args += [
        "--token-file",
        str(tmp_path / "tokens.txt"),
        "--memory",
        f"sqlite:///{tmp_path}/m.db",
        "--port",
        str(port),
    ]
    url = f"http://127.0.0.1:{port}"
    with servers.running(args, ready_url=f"{url}/readyz", log=tmp_path / "serve.log", timeout=120):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{url}/v1/dialogues").status_code == 401
        from PIL import Image

        Image.new("RGB", (320, 240), "white").save(tmp_path / "x.png")
        with (tmp_path / "x.png").open("rb") as f:
            d = httpx.post(f"{url}/v1/upload", files={"file": ("x.png", f)}, headers=headers).json()["id"]
        turn = httpx.post(
            f"{url}/v1/dialogues/{d}/turns",
            json={"question": "right of bbox=[1, 1, 9, 9]"},
            headers=headers,
            timeout=60,
        ).json()
        assert [r["id"] for r in turn["regions"]] == ["R1"]
        assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "regionreasoner"
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_a_signal_marks_the_app_draining_before_uvicorn_stops(tmp_path: Path) -> None:
    import signal

    import uvicorn

    from regionreasoner.agent.api import RegionAgent
    from regionreasoner.agent.cli_serve import _draining_server
    from regionreasoner.agent.server import ServeSettings, create_app
    from regionreasoner.policies.scripted import ScriptedPolicy

    with RegionAgent(ScriptedPolicy([TURN], repeat=True), memory=f"sqlite:///{tmp_path}/m.db") as agent:
        app = create_app(agent, ServeSettings(auth=False))
        server = _draining_server()(uvicorn.Config(app, host="127.0.0.1", port=1))
        try:
            server.handle_exit(signal.SIGTERM, None)
            assert app.state.rr.gate.draining and server.should_exit
        finally:
            from sse_starlette.sse import AppStatus

            AppStatus.should_exit = False  # sse-starlette's own exit hook ran too; later streams in this process live
