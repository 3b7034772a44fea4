"""Every command on a corpus of bad inputs, as a careless user or an attacker
would give them. Each case must end with exit code 2, exactly one line
``molgen: error: ...`` on stderr, no traceback, and every file that existed
before (inputs, models, runs) byte-identical afterwards."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

from conftest import SMALL_SMILES
from molgen.cli.main import main

LOCK = ".molgen.lock"


def _snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (lock files aside: they hold the pid of the last holder)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != LOCK}


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_prior_dir):
    """A folder with the things users point commands at: molecule files, a
    model, a damaged model, a predictor, runs of every kind."""
    root = tmp_path_factory.mktemp("world")
    (root / "good.smi").write_text("\n".join(SMALL_SMILES) + "\n")
    (root / "empty.smi").write_text("")
    (root / "binary.smi").write_bytes(bytes(range(256)) * 4)
    (root / "nosmiles.csv").write_text("name,value\nA,1\nB,2\n")
    (root / "props.csv").write_text("smiles,y\n" + "".join(f"{s},{i % 3}.5\n" for i, s in enumerate(SMALL_SMILES * 3)))
    (root / "bad.sdf").write_text("this is not\nan SD file\n$$$$\n")
    (root / "inf_weight.toml").write_text('[[components]]\ntype = "qed"\nweight = inf\n')
    (root / "empty_command.toml").write_text('[[components]]\ntype = "external"\ncommand = []\n')
    (root / "bad_heads.toml").write_text("[model]\nd_model = 30\nn_heads = 4\n")
    (root / "bad.cif").write_text("data_x\n_cell_length_a 4\n")
    model = root / "model"
    for name in ("config.json", "model.safetensors"):
        (model / name).parent.mkdir(exist_ok=True)
        (model / name).write_bytes((Path(tiny_prior_dir) / name).read_bytes())
    nan_model = root / "nan_model"
    nan_model.mkdir()
    from safetensors.torch import load_file, save_file

    state = load_file(str(model / "model.safetensors"))
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(nan_model / "model.safetensors"))
    (nan_model / "config.json").write_text((model / "config.json").read_text())
    bad_hparams = root / "bad_hparams"
    bad_hparams.mkdir()
    (bad_hparams / "model.safetensors").write_bytes((model / "model.safetensors").read_bytes())
    config = json.loads((model / "config.json").read_text())
    config["hparams"] = ["d_model", 48]
    (bad_hparams / "config.json").write_text(json.dumps(config))
    assert main(["fit-predictor", "--data", str(root / "props.csv"), "--target", "y", "--model", "fingerprint-mlp",
                 "--n-models", "1", "--epochs", "1", "--out", str(root / "pred"), "-q"]) == 0
    assert main(["optimize", "--prior", str(model), "--objective", "qed", "--budget", "16", "--batch-size", "16",
                 "--out", str(root / "opt"), "-q"]) == 0
    assert main(["train", "--data", str(root / "good.smi"), "--max-steps", "2", "--batch-size", "4",
                 "--config", str(_tiny_model(root)), "--out", str(root / "trained"), "-q"]) == 0
    (root / "disc").mkdir()
    (root / "disc" / "rounds.csv").write_text("round\n")
    (root / "long.smi").write_text("C" * 1_000_000 + "\n")
    return root


def _tiny_model(root: Path) -> Path:
    path = root / "tiny.toml"
    path.write_text("[model]\nd_model = 32\nn_layers = 1\nn_heads = 2\n")
    return path


# (case id, arguments with {w} for the world folder, a regular expression the error line must match)
CASES = [
    # sample
    ("sample-unwritable", "sample {w}/model -n 2 -o /proc/x.csv", r"cannot"),
    ("sample-temperature-nan", "sample {w}/model -n 2 --temperature nan", r"temperature"),
    ("sample-temperature-inf", "sample {w}/model -n 2 --temperature inf", r"temperature"),
    ("sample-batch-0", "sample {w}/model -n 2 --batch-size 0", r"batch-size"),
    ("sample-max-length-negative", "sample {w}/model -n 2 --max-length -3", r"max-length"),
    ("sample-max-length-0", "sample {w}/model -n 2 --max-length 0", r"max-length"),
    ("sample-n-0", "sample {w}/model -n 0", r"positive"),
    ("sample-unknown-suffix", "sample {w}/model -n 2 -o {w}/out.parquet", r"\.smi"),
    ("sample-into-model-dir", "sample {w}/model -n 2 -o {w}/model/x.smi", r"model directory"),
    ("sample-over-model-file", "sample {w}/model -n 2 -o {w}/model/config.json", r"suffix|format|model"),
    ("sample-nan-weights", "sample {w}/nan_model -n 2", r"NaN"),
    ("sample-hparams-type", "sample {w}/bad_hparams -n 2", r"hparams"),
    ("sample-missing-model", "sample {w}/nowhere -n 2", r"no model directory"),
    # evaluate
    ("evaluate-over-input", "evaluate {w}/good.smi -o {w}/good.smi --no-ref --no-train", r"json|input"),
    ("evaluate-empty", "evaluate {w}/empty.smi --no-ref --no-train", r"empty|no "),
    ("evaluate-binary", "evaluate {w}/binary.smi --no-ref --no-train", r"cannot read|UTF|utf"),
    ("evaluate-no-smiles-column", "evaluate {w}/nosmiles.csv --no-ref --no-train", r"columns are"),
    ("evaluate-malformed-cif", "evaluate {w}/bad.cif", r"bad\.cif"),
    ("evaluate-unwritable", "evaluate {w}/good.smi --no-ref --no-train -o /proc/r.json", r"cannot"),
    # score
    ("score-unwritable", "score {w}/good.smi --objective qed -o /proc/x.csv", r"cannot"),
    ("score-inf-weight", "score {w}/good.smi --objective {w}/inf_weight.toml -o {w}/s.csv", r"weight"),
    ("score-empty-command", "score {w}/good.smi --objective {w}/empty_command.toml -o {w}/s.csv", r"command"),
    ("score-no-smiles-column", "score {w}/nosmiles.csv --objective qed -o {w}/s.csv", r"columns are"),
    ("score-missing-id-column", "score {w}/good.smi --objective qed --id-column nope -o {w}/s.csv", r"nope"),
    ("score-over-input", "score {w}/props.csv --objective qed -o {w}/props.csv", r"input"),
    ("score-unknown-input-suffix", "score {w}/tiny.toml --objective qed -o {w}/s.csv", r"known"),
    ("score-workers-0", "score {w}/good.smi --objective qed -o {w}/s.csv --executor process --workers 0", r"workers"),
    ("score-chunk-size-0", "score {w}/good.smi --objective qed -o {w}/s.csv --chunk-size 0", r"chunk size"),
    # predict
    ("predict-over-predictor", "predict {w}/pred {w}/good.smi -o {w}/pred/config.json", r"csv|model directory"),
    ("predict-into-predictor", "predict {w}/pred {w}/good.smi -o {w}/pred/out.csv", r"model directory"),
    ("predict-unwritable", "predict {w}/pred {w}/good.smi -o /proc/p.csv", r"cannot"),
    ("predict-over-input", "predict {w}/pred {w}/props.csv -o {w}/props.csv", r"input"),
    ("predict-chunk-size-negative", "predict {w}/pred {w}/good.smi -o {w}/p.csv --chunk-size -3", r"chunk size"),
    # export and report
    ("export-over-run-file", "export {w}/opt -o {w}/opt/top100.csv", r"replace a file"),
    ("export-unwritable", "export {w}/opt -o /proc/top.csv", r"cannot"),
    ("report-over-input", "report {w}/good.smi -o {w}/good.smi", r"html|input"),
    ("report-unknown-source", "report {w}/tiny.toml -o {w}/r.html", r"."),
    # runs: never replaced without --overwrite, one writer, valid options
    ("train-over-run", "train --data {w}/good.smi --max-steps 2 --out {w}/trained", r"--resume|--overwrite"),
    ("train-resume-and-overwrite", "train --resume --overwrite --max-steps 2 --out {w}/trained", r"contradict"),
    ("train-seed-negative", "train --data {w}/good.smi --max-steps 2 --seed -1 --out {w}/t1", r"seed"),
    ("train-batch-0", "train --data {w}/good.smi --max-steps 2 --batch-size 0 --out {w}/t2", r"batch"),
    ("train-steps-0", "train --data {w}/good.smi --max-steps 0 --out {w}/t3", r"steps"),
    ("train-minutes-nan", "train --data {w}/good.smi --max-minutes nan --out {w}/t4", r"minutes"),
    ("train-heads", "train --data {w}/good.smi --max-steps 2 --config {w}/bad_heads.toml --out {w}/t5", r"n_heads|d_model"),
    ("train-resume-below-step", "train --resume --max-steps 1 --out {w}/trained", r"already at step"),
    ("train-into-file", "train --data {w}/good.smi --max-steps 2 --out {w}/good.smi", r"is a file"),
    ("fit-predictor-over-run", "fit-predictor --data {w}/props.csv --target y --out {w}/pred", r"--overwrite"),
    ("optimize-over-run", "optimize --prior {w}/model --objective qed --budget 16 --out {w}/opt", r"--resume|--overwrite"),
    ("optimize-sigma-inf", "optimize --prior {w}/model --objective qed --budget 16 --sigma inf --out {w}/o1", r"sigma"),
    ("optimize-budget-0", "optimize --prior {w}/model --objective qed --budget 0 --out {w}/o2", r"budget"),
    ("optimize-other-objective", "optimize --resume --objective logp --budget 20 --out {w}/opt", r"differs"),
    ("discover-over-run", "discover --rounds 1 --out {w}/disc", r"--resume|--overwrite"),
    ("discover-over-a-model", "discover --rounds 1 --overwrite --out {w}/model", r"only replaces"),
    ("train-over-optimize-run", "train --data {w}/good.smi --max-steps 2 --overwrite --out {w}/opt", r"only replaces"),
]


@pytest.mark.parametrize("case, command, pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_error_and_changes_nothing(world, case, command, pattern, capsys):
    import re

    args = command.format(w=world).split()
    before = _snapshot(world)
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, f"{case}: exit {code}, stderr {err[-500:]}"
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("molgen: error:"), err[-800:]
    assert "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]
    after = _snapshot(world)
    changed = [name for name in before if before[name] != after.get(name)]
    assert not changed, f"{case} changed {changed}"


def test_a_huge_line_is_an_invalid_entry_not_a_memory_blow_up(world, tmp_path):
    import resource

    assert main(["score", str(world / "long.smi"), "--objective", "qed", "-o", str(tmp_path / "s.csv"), "-q"]) == 0
    text = (tmp_path / "s.csv").read_text()
    assert "longer than the limit" in text
    # Peak memory of this process stays far below what parsing a 1 MB SMILES costs (gigabytes).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 3 * 2**20  # kB


def test_excel_csv_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffSMILES,id\nCCO,a\nc1ccccc1,b\n".encode("utf-8"))
    assert main(["score", str(path), "--objective", "qed", "-o", str(tmp_path / "s.csv"), "-q"]) == 0
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[0].startswith("id,") and len(rows) == 3


def test_a_file_named_like_a_data_set_is_not_taken_silently(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nci-5k").write_text("CCO\n")
    from molgen.core.errors import MolgenError
    from molgen.datasets.loading import resolve_source

    with pytest.raises(MolgenError, match="data:nci-5k"):
        resolve_source("nci-5k")
    assert resolve_source("./nci-5k")[1] is None
    assert resolve_source("data:nci-5k")[1] is not None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
