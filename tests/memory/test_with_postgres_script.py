"""`.ci/with-postgres.sh` starts a server for the command, passes its exit status on, and always cleans up."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "with-postgres.sh"
PORT = 54339  # not the port `make test-postgres` itself uses


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.postgres
@pytest.mark.slow
def test_script_runs_the_command_and_stops_the_server() -> None:
    if not os.environ.get("REGIONREASONER_TEST_POSTGRES_URL"):
        pytest.skip("runs under `make test-postgres` (it starts a second, throw-away server)")
    if _port_open(PORT):
        pytest.skip(f"port {PORT} is in use; free it to run this test")
    tmp_root = Path(tempfile.gettempdir())
    before = set(tmp_root.glob("rr-postgres.*"))
    probe = (
        'echo "$REGIONREASONER_TEST_POSTGRES_URL"; '
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {PORT}), 5).close()\" || exit 9; "
        "exit 7"
    )
    run = subprocess.run(
        ["bash", str(SCRIPT), "bash", "-c", probe],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PGPORT": str(PORT)},
    )
    assert run.returncode == 7, run.stderr
    assert run.stdout.strip() == f"postgresql+psycopg://postgres@127.0.0.1:{PORT}/postgres"
    assert not _port_open(PORT), "the server must be stopped when the command ends"
    assert set(tmp_root.glob("rr-postgres.*")) == before, "the temporary data folder must be removed"
