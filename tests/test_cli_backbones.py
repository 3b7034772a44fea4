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
    from molgen.domains.protein import write_fasta

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
