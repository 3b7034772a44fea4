"""Ask/tell campaign against a simulated lab, next to random selection from
the prior with the same number of measurements; then HTTP latency of ask
and tell and recovery of the server after SIGKILL.

The simulated lab is a GSK3-beta activity model the optimiser never sees:
a random forest on ECFP4 bits trained on the mirror's ``gsk3b`` set (52,802
molecules, binary label), as TDC's GSK3B oracle is built; a measurement is
its predicted probability of activity.

    MOLGEN_DATA_MIRROR=../shared/data python benchmarks/bench_lab_campaign.py \
        --rounds 10 --batch 24 --seeds 0,1,2 --out benchmarks/results/lab_campaign.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from molgen.datasets import load_texts
from molgen.domains import SmilesDomain


def machine() -> str:
    cpu = platform.processor() or "cpu"
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def ecfp4(smiles: list[str]) -> np.ndarray:
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return np.stack([gen.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in smiles]).astype(np.uint8)


class HiddenLab:
    """P(active) of a random forest on the gsk3b set: the simulated assay."""

    def __init__(self, seed: int = 0):
        from sklearn.ensemble import RandomForestClassifier

        loaded = load_texts("gsk3b", SmilesDomain(), on_invalid="skip", targets=("gsk3",))
        y = np.asarray(loaded.targets["gsk3"], dtype=float)
        keep = np.isfinite(y)
        smiles = [t for t, k in zip(loaded.texts, keep) if k]
        t0 = time.perf_counter()
        self.model = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=seed).fit(ecfp4(smiles), y[keep].astype(int))
        self.info = {"n": len(smiles), "actives": int(y[keep].sum()), "fit_seconds": time.perf_counter() - t0}

    def __call__(self, smiles: list[str]) -> np.ndarray:
        return self.model.predict_proba(ecfp4(smiles))[:, 1]


def cumulative(values_by_round: list[np.ndarray]) -> tuple[list[float], list[float]]:
    best, top10, seen = [], [], []
    for values in values_by_round:
        seen += list(values)
        ordered = np.sort(seen)[::-1]
        best.append(float(ordered[0]))
        top10.append(float(ordered[:10].mean()))
    return best, top10


def run_campaign(lab: HiddenLab, seed: int, args, folder: Path) -> dict:
    from molgen.workflows.lab import new_campaign, open_campaign

    new_campaign(folder, {"generator": "zinc250k", "campaign": {"budget": args.rounds * args.batch, "batch_size": args.batch,
                                                                 "pool_size": args.pool, "seed": seed, "acquisition": args.acquisition}})
    rng = np.random.default_rng(seed)
    by_round, ask_s, tell_s = [], [], []
    for _ in range(args.rounds):
        with open_campaign(folder) as campaign:  # reopened each round, as a lab's process would
            t0 = time.perf_counter()
            batch = campaign.ask()
            ask_s.append(time.perf_counter() - t0)
            values = lab([p.key for p in batch])
            order = rng.permutation(len(batch))  # answers come back out of order, in two parts
            half = len(order) // 2
            t0 = time.perf_counter()
            for part in (order[half:], order[:half]):
                campaign.tell([{"id": batch[i].id, "value": float(values[i])} for i in part])
            tell_s.append(time.perf_counter() - t0)
            by_round.append(values)
    best, top10 = cumulative(by_round)
    return {"best": best, "top10": top10, "ask_seconds": ask_s, "tell_seconds": tell_s,
            "hits_0.5": int(sum((v >= 0.5).sum() for v in by_round))}


def run_random(lab: HiddenLab, seed: int, args) -> dict:
    from molgen.backbones.base import load_generator
    from molgen.pretrained import resolve_model_path

    generator = load_generator(resolve_model_path("zinc250k"))
    domain = generator.domain
    g = torch.Generator().manual_seed(seed)
    keys, seen = [], set()
    while len(keys) < args.rounds * args.batch:
        for text in generator.sample_texts(args.batch * 4, generator=g):
            obj = domain.try_parse(text)
            key = None if obj is None else domain.key(obj)
            if key is not None and key not in seen and len(keys) < args.rounds * args.batch:
                seen.add(key)
                keys.append(key)
    values = lab(keys)
    by_round = [values[i:i + args.batch] for i in range(0, len(values), args.batch)]
    best, top10 = cumulative(by_round)
    return {"best": best, "top10": top10, "hits_0.5": int((values >= 0.5).sum())}


def http_part(lab: HiddenLab, args, folder: Path) -> dict:
    import httpx

    from molgen.workflows.lab import new_campaign

    new_campaign(folder, {"generator": "zinc250k", "campaign": {"budget": 1000, "pool_size": args.pool, "seed": 0}})
    env = {**os.environ, "MOLGEN_SERVE_TOKEN": "bench-token"}
    port = args.port
    command = [sys.executable, "-m", "molgen.cli.main", "serve", str(folder), "--port", str(port), "--log-level", "warning"]
    headers = {"Authorization": "Bearer bench-token"}
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)

    def start() -> tuple[subprocess.Popen, float]:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while True:
            try:
                if client.get("/health").status_code == 200:
                    return proc, time.perf_counter() - t0
            except httpx.TransportError:
                time.sleep(0.1)
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode())

    proc, first_start = start()
    latency: dict[str, list[float]] = {}
    try:
        for n in (24, 96):
            for rep in range(args.http_repeats):
                t0 = time.perf_counter()
                batch = client.post("/ask", json={"n": n}, headers=headers).json()["candidates"]
                latency.setdefault(f"ask_{n}", []).append(time.perf_counter() - t0)
                values = lab([c["key"] for c in batch])
                t0 = time.perf_counter()
                response = client.post("/tell", json={"results": [{"id": c["id"], "value": float(v)} for c, v in zip(batch, values)]},
                                       headers=headers)
                latency.setdefault(f"tell_{n}", []).append(time.perf_counter() - t0)
                assert response.status_code == 200, response.text
        # Recovery: ask a batch, tell half of it, SIGKILL, restart, check.
        batch = client.post("/ask", json={"n": 24}, headers=headers).json()["candidates"]
        told = batch[:12]
        client.post("/tell", json={"results": [{"id": c["id"], "value": 0.5} for c in told]}, headers=headers)
        before = client.get("/status", headers=headers).json()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc, restart_seconds = start()
    try:
        after = client.get("/status", headers=headers).json()
        pending_ids = {c["id"] for c in client.get("/candidates", params={"status": "pending"}, headers=headers).json()}
        asked_keys = {c["key"] for c in client.get("/candidates", headers=headers).json()}
        fresh = client.post("/ask", json={"n": 24}, headers=headers).json()["candidates"]
        again = client.post("/tell", json={"results": [{"id": c["id"], "value": 0.5} for c in told]}, headers=headers).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    checks = {
        "told_kept": after["measured"] == before["measured"] and after["asked"] == before["asked"],
        "pending_kept": pending_ids == {c["id"] for c in batch[12:]},
        "no_pending_reasked": not ({c["key"] for c in fresh} & asked_keys),
        "retell_not_double_counted": again["recorded"] == 0 and again["duplicates"] == 12 and again["measured"] == before["measured"],
        "budget_exact": after["remaining_budget"] == 1000 - after["asked"],
    }
    return {"first_start_seconds": first_start, "restart_seconds": restart_seconds,
            "latency_median_seconds": {k: float(np.median(v)) for k, v in latency.items()},
            "latency_all_seconds": latency, "recovery_checks": checks, "status_before_kill": {k: before[k] for k in ("asked", "measured", "pending")}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--acquisition", default="ucb")
    parser.add_argument("--http-repeats", type=int, default=3)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/lab_campaign.json")
    args = parser.parse_args()
    lab = HiddenLab()
    print("hidden lab:", lab.info, flush=True)
    result = {"date": date.today().isoformat(), "machine": machine(), "settings": vars(args), "lab": lab.info, "seeds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [int(s) for s in args.seeds.split(",")]:
            t0 = time.perf_counter()
            campaign = run_campaign(lab, seed, args, Path(tmp) / f"c{seed}")
            campaign["seconds"] = time.perf_counter() - t0
            random = run_random(lab, seed, args)
            result["seeds"][seed] = {"campaign": campaign, "random": random}
            print(f"seed {seed}: campaign best {campaign['best'][-1]:.3f} top10 {campaign['top10'][-1]:.3f} "
                  f"(hits>=0.5: {campaign['hits_0.5']}, {campaign['seconds']:.0f} s) | random best {random['best'][-1]:.3f} "
                  f"top10 {random['top10'][-1]:.3f} (hits {random['hits_0.5']})", flush=True)
        if not args.skip_http:
            result["http"] = http_part(lab, args, Path(tmp) / "served")
            print("http:", json.dumps({k: v for k, v in result["http"].items() if k != "latency_all_seconds"}), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("written", args.out)


if __name__ == "__main__":
    main()
