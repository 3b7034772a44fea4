"""``molgen serve`` with a real uvicorn server in a subprocess, driven over
HTTP against a simulated lab that answers late and out of order; the server
is SIGKILLed between a tell and the next ask and restarted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors

from molgen.workflows.lab import new_campaign

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def hidden_assay(smiles: str) -> float:
    time.sleep(0.01)  # a lab takes its time
    return float(Descriptors.TPSA(Chem.MolFromSmiles(smiles)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder, port: int, env: dict | None = None, host: str = "127.0.0.1"):
        self.command = [sys.executable, "-m", "molgen.cli.main", "serve", str(folder), "--port", str(port), "--host", host,
                        "--max-request-bytes", "20000", "--log-level", "warning"]
        self.env = {**os.environ, "MOLGEN_SERVE_TOKEN": TOKEN, **(env or {})}
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        self.proc = None

    def start(self) -> "Server":
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(self.proc.stderr.read().decode())
            try:
                if self.client.get("/health").status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("server did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def campaign_dir(tmp_path):
    folder = tmp_path / "campaign"
    new_campaign(folder, {"generator": "zinc250k", "device": "cpu", "campaign": {"budget": 30, "pool_size": 100, "seed": 1}})
    return folder


def test_served_campaign_survives_sigkill(campaign_dir, tmp_path):
    server = Server(campaign_dir, free_port()).start()
    http = server.client
    try:
        # One writer: the CLI is refused while the server holds the campaign.
        cli = subprocess.run([sys.executable, "-m", "molgen.cli.main", "campaign", "ask", str(campaign_dir), "-o",
                              str(tmp_path / "b.csv")], capture_output=True, text=True)
        assert cli.returncode == 2 and "in use by molgen serve" in cli.stderr

        # Bad requests get 4xx with a reason.
        assert http.post("/ask", json={"n": 2}).status_code == 401
        assert http.post("/ask", json={"n": 2}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.post("/ask", json={"n": 0}, headers=AUTH).status_code == 422
        bad_json = http.post("/tell", content=b"{not json", headers={**AUTH, "content-type": "application/json"})
        assert bad_json.status_code == 422 and "JSON" in bad_json.text
        assert http.post("/tell", content=b"x" * 30000, headers={**AUTH, "content-type": "application/json"}).status_code == 413

        first = http.post("/ask", json={"n": 10, "request_id": "r1"}, headers=AUTH).json()
        ids = [c["id"] for c in first["candidates"]]
        assert len(set(ids)) == 10 and first["remaining_budget"] == 20
        retried = http.post("/ask", json={"n": 10, "request_id": "r1"}, headers=AUTH).json()
        assert [c["id"] for c in retried["candidates"]] == ids and retried["remaining_budget"] == 20

        unknown = http.post("/tell", json={"results": [{"id": "b9999-001", "value": 1.0}]}, headers=AUTH)
        assert unknown.status_code == 404 and "b9999-001" in unknown.json()["detail"]
        nan = http.post("/tell", content=b'{"results": [{"id": "%s", "value": NaN}]}' % ids[0].encode(),
                        headers={**AUTH, "content-type": "application/json"})
        assert nan.status_code == 422 and "not finite" in nan.json()["detail"]

        # The lab answers 6 of 10, out of order; then the server dies.
        values = {c["id"]: hidden_assay(c["key"]) for c in first["candidates"]}
        told = [ids[i] for i in (4, 0, 5, 2, 1, 3)]
        reply = http.post("/tell", json={"results": [{"id": i, "value": values[i]} for i in told]}, headers=AUTH).json()
        assert reply["recorded"] == 6 and reply["pending"] == 4
        conflict = http.post("/tell", json={"results": [{"id": ids[4], "value": values[ids[4]] + 1}]}, headers=AUTH)
        assert conflict.status_code == 409
        before = http.get("/status", headers=AUTH).json()
    finally:
        server.kill()

    server = Server(campaign_dir, free_port()).start()
    http = server.client
    try:
        after = http.get("/status", headers=AUTH).json()
        assert (after["measured"], after["pending"], after["asked"], after["remaining_budget"]) == (6, 4, 10, 20)
        assert after["best"] == before["best"]
        pending = {c["id"] for c in http.get("/candidates", params={"status": "pending"}, headers=AUTH).json()}
        assert pending == set(ids) - set(told)
        # A late, repeated answer after the restart is not counted twice.
        again = http.post("/tell", json={"results": [{"id": i, "value": values[i]} for i in told[:3]]}, headers=AUTH).json()
        assert again["recorded"] == 0 and again["duplicates"] == 3 and again["measured"] == 6
        second = http.post("/ask", json={"n": 8}, headers=AUTH).json()
        asked_before = {c["key"] for c in first["candidates"]}
        assert not {c["key"] for c in second["candidates"]} & asked_before  # nothing pending is re-asked as new
        assert second["remaining_budget"] == 12
        # The remaining answers of batch 1 arrive last.
        late = [i for i in ids if i not in told]
        done = http.post("/tell", json={"results": [{"id": i, "value": values[i]} for i in late]}, headers=AUTH).json()
        assert done["measured"] == 10 and done["pending"] == 8
        top = http.get("/candidates", params={"top": 3}, headers=AUTH).json()
        assert [c["value"] for c in top] == sorted(values.values(), reverse=True)[:3]
        schema = http.get("/openapi.json").json()
        assert {"/ask", "/tell", "/status", "/candidates"} <= set(schema["paths"])
    finally:
        server.stop()


def test_serve_refuses_public_bind_without_token(campaign_dir):
    env = {**os.environ, "MOLGEN_SERVE_TOKEN": ""}
    result = subprocess.run([sys.executable, "-m", "molgen.cli.main", "serve", str(campaign_dir), "--host", "0.0.0.0",
                             "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "without a token" in result.stderr
