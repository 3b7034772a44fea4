"""`molgen train --backbone vae|masked-diffusion` and `molgen sample` work for
every token domain, from the files users have (.smi, CSV of CIFs, FASTA)."""

from __future__ import annotations

import csv

import pytest
from conftest import SMALL_CRYSTALS, SMALL_PEPTIDES, SMALL_SMILES

from molgen.cli.main import main


def _write_data(domain: str, tmp_path):
    if domain == "smiles":
        path = tmp_path / "mols.smi"
        path.write_text("\n".join(SMALL_SMILES * 3) + "\n")
        return path, "s.smi"
    if domain == "crystal":
        from molgen.domains.crystal import CrystalDomain, to_cif

        parser = CrystalDomain()
        path = tmp_path / "crystals.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["material_id", "cif"])
            for i, text in enumerate(SMALL_CRYSTALS * 3):
                writer.writerow([i, to_cif(parser.parse(text))])
        return path, "samples.csv"
    from molgen.datasets.fasta import write_fasta

    path = tmp_path / "amps.fasta"
    write_fasta(path, [(f"p{i}", s) for i, s in enumerate(SMALL_PEPTIDES * 3)])
    return path, "samples.fasta"


@pytest.mark.parametrize("backbone", ["vae", "masked-diffusion"])
@pytest.mark.parametrize("domain", ["smiles", "crystal", "protein"])
def test_cli_trains_and_samples_each_backbone_on_each_domain(backbone, domain, tmp_path):
    data, sample_name = _write_data(domain, tmp_path)
    run = tmp_path / "run"
    args = ["train", "--backbone", backbone, "--domain", domain, "--data", str(data), "--max-steps", "2", "--no-progress", "--out", str(run)]
    assert main(args) == 0
    assert (run / "model" / "model.safetensors").exists()
    out = tmp_path / sample_name
    assert main(["sample", str(run), "-n", "4", "--seed", "1", "-o", str(out)]) == 0
    assert out.exists() and out.stat().st_size > 0
    if domain == "crystal" and backbone == "vae":  # the VAE decoder follows the crystal grammar too
        assert main(["sample", str(run), "-n", "4", "--seed", "1", "--constrained", "-o", str(tmp_path / "c.csv")]) == 0
        sharper = ["--constrained", "--field-temperature", "coordinate=0.5"]
        assert main(["sample", str(run), "-n", "4", "--seed", "1", *sharper, "-o", str(tmp_path / "f.csv")]) == 0
        assert main(["sample", str(run), "-n", "4", "--field-temperature", "coordinate=x"]) != 0
        excluded = tmp_path / "e.csv"
        assert main(["sample", str(run), "-n", "4", "--seed", "1", "--constrained", "--semantic", "-o", str(excluded)]) == 0
        with excluded.open() as handle:
            assert len(list(csv.DictReader(handle))) == 4
        assert main(["sample", str(run), "-n", "4", "--semantic", "--no-constrained"]) != 0  # needs the grammar


@pytest.mark.parametrize("domain", ["molgraph", "crystal"])
def test_cli_graph_diffusion_trains_resumes_and_samples_with_a_condition(domain, tmp_path, capsys):
    if domain == "molgraph":
        data = tmp_path / "mols.csv"
        rows = [(s, float(len(s))) for s in SMALL_SMILES * 3]
        data.write_text("smiles,size\n" + "\n".join(f"{s},{v}" for s, v in rows) + "\n")
        sample_name, condition = "s.smi", "size=12"
    else:
        from molgen.domains.crystal import CrystalDomain, to_cif

        parser = CrystalDomain()
        data = tmp_path / "crystals.csv"
        with open(data, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["cif", "size"])
            for text in SMALL_CRYSTALS * 3:
                structure = parser.parse(text)
                writer.writerow([to_cif(structure), float(len(structure))])
        sample_name, condition = "cifs", "size=4"
    config = tmp_path / "run.toml"
    config.write_text('[model]\nconditions = ["size"]\nd_node = 32\nd_edge = 16\nd_global = 32\nn_layers = 1\nn_heads = 2\nsampling_steps = 5\n')
    run = tmp_path / "run"
    common = ["--backbone", "graph-diffusion", "--domain", domain, "--data", str(data), "--no-progress", "--out", str(run)]
    assert main(["train", "--config", str(config), "--max-steps", "2", *common]) == 0
    assert main(["train", "--max-steps", "4", "--resume", *common]) == 0
    assert "for 4 steps" in capsys.readouterr().out
    out = tmp_path / sample_name
    # Corrector steps only exist for crystal coordinates; molecules refuse them.
    corrector = ["--corrector-steps", "1"] if domain == "crystal" else []
    assert main(["sample", str(run), "-n", "4", "-o", str(out), "--condition", condition, "--guidance", "1.5", "--steps", "3",
                 "--temperature", "1.5", *corrector]) == 0
    assert out.exists()
    assert "validity" in capsys.readouterr().out
    refused = [(["--corrector-steps", "1"], "periodic")] if domain == "molgraph" else [(["--corrector-steps", "-1"], ">= 0")]
    for bad, message in ((["--top-k", "3"], "not supported"), (["--condition", "logp=1"], "unknown condition"),
                         (["--condition", "size"], "NAME=NUMBER"), *refused):
        assert main(["sample", str(run), "-n", "2", *bad]) != 0
        assert message in capsys.readouterr().err
