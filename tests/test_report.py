"""`molgen report`: one self-contained HTML page per kind of source, built
from small real runs and files made here, parsed back with html.parser."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import SMALL_CRYSTALS, SMALL_PEPTIDES, SMALL_SMILES

from molgen.core.errors import MolgenError
from molgen.report import write_report

XSS = "<script>alert(1)</script>"


class ParsedPage(HTMLParser):
    """Section headings, image sources, link targets, tag counts and text of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.headings: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: Counter = Counter()
        self.chunks: list[str] = []
        self._in_h2 = False
        self.feed(text)
        self.text = " ".join(self.chunks)

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        self.links += [attrs[name] for name in ("src", "href") if name in attrs]
        if tag == "h2":
            self._in_h2 = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        self.chunks.append(data)
        if self._in_h2:
            self.headings[-1] += data


def check_page(summary, headings: list[str]) -> ParsedPage:
    """The page parses, has exactly ``headings``, every image is inline, and
    nothing is fetched or run."""
    raw = Path(summary.path).read_text(encoding="utf-8")
    assert "http://" not in raw and "https://" not in raw  # not even a namespace URL of an SVG
    page = ParsedPage(raw)
    assert page.headings == headings == summary.sections
    assert len(page.images) == summary.n_images
    assert all(src.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")) for src in page.images)
    assert not [url for url in page.links if re.match(r"\s*(https?:)?//", url, re.I)]
    assert page.tags["script"] == 0 and page.tags["link"] == 0 and page.tags["iframe"] == 0
    return page


def metric_cells(summary) -> dict[str, str]:
    """Name -> shown value of the two-column rows of a page."""
    return dict(re.findall(r'<tr><td>([^<]+)</td><td class="num">([^<]+)</td></tr>', Path(summary.path).read_text()))


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- training runs ------------------------------------------------------------------
@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    from molgen.core.config import validate
    from molgen.workflows import RunConfig, run_training

    config = validate(RunConfig, {
        "data": {"source": "nci-5k", "limit": 200},
        "model": {"d_model": 32, "n_layers": 1, "n_heads": 2},
        "train": {"batch_size": 32, "max_steps": 20, "warmup_steps": 5, "val_every": 10, "log_every": 5, "progress": False},
    })
    return run_training(config, tmp_path_factory.mktemp("train"))


def test_training_report_has_loss_curves_settings_and_model_size(train_run, tmp_path):
    before = tree_digest(train_run.out_dir)
    summary = write_report(train_run.out_dir, tmp_path / "train.html")
    assert summary.kind == "train" and summary.n_images == 1
    page = check_page(summary, ["Loss curves", "Run settings", "Model"])
    assert f"{train_run.n_parameters:,}" in page.text  # the model's own parameter count
    assert "best validation loss" in page.text and "nci-5k" in page.text
    assert tree_digest(train_run.out_dir) == before


def test_missing_pieces_of_a_training_run_become_notes(train_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(train_run.out_dir, run)
    shutil.rmtree(run / "model")  # killed before the final save: the checkpoint remains
    with (run / "train_log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    with (run / "train_log.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([{**r, "val_loss": ""} for r in rows])
    page = check_page(write_report(run, tmp_path / "r.html"), ["Loss curves", "Run settings", "Model"])
    assert "No validation loss was logged" in page.text and "showing the last checkpoint" in page.text
    (run / "train_log.csv").write_text("step,epoch,lr,train_loss,val_loss,tokens_per_s,elapsed_s\n")
    shutil.rmtree(run / "checkpoint")
    page = check_page(write_report(run, tmp_path / "r.html"), ["Loss curves", "Run settings", "Model"])
    assert "holds no rows yet" in page.text and "No saved model" in page.text


# -- sample files, evaluation reports, optimize runs and the demo --------------------------
DEMO_SAMPLES = 30


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A tiny `molgen demo`: samples of the shipped prior, their evaluation,
    and a 48-call optimize run (REINVENT on that prior)."""
    from molgen.workflows.demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo") / "demo", n_samples=DEMO_SAMPLES, budget=48, progress=False,
                    log=lambda line: None)


def test_sample_file_report_counts_escapes_and_compares_with_a_reference(demo_dir, tmp_path):
    # `molgen sample` output of the shipped prior (the demo's 30 samples), plus a hostile line.
    samples = tmp_path / "samples.smi"
    shutil.copyfile(demo_dir.samples, samples)
    n_valid = round(demo_dir.figures["validity"] * DEMO_SAMPLES)
    n_unique = round(demo_dir.figures["uniqueness"] * n_valid)
    with samples.open("a") as handle:
        handle.write(f"{XSS}\tname<b>x</b>\n")
    reference = tmp_path / "ref.smi"
    reference.write_text("\n".join(SMALL_SMILES) + "\n")
    summary = write_report(samples, tmp_path / "out" / "samples.html", reference=str(reference), max_depictions=12)
    assert summary.kind == "samples"
    page = check_page(summary, ["Validity and uniqueness", "Property distributions", "Molecules"])
    assert summary.n_images == 1 + min(12, n_unique)  # histograms + depictions of distinct molecules
    raw = Path(summary.path).read_text()
    assert XSS not in raw and "&lt;script&gt;alert(1)&lt;/script&gt;" in raw and "name&lt;b&gt;x&lt;/b&gt;" in raw
    assert XSS in page.text  # shown to the reader as text
    cells = metric_cells(summary)
    n = DEMO_SAMPLES + 1
    assert (cells["entries"], cells["valid"], cells["validity"]) == (str(n), str(n_valid), f"{n_valid / n:.4f}")
    assert f"against {len(SMALL_SMILES)} distinct molecules of" in page.text


def test_a_file_without_valid_molecules_gets_notes_and_an_empty_one_an_error(tmp_path):
    bad = tmp_path / "bad.smi"
    bad.write_text("C1CC\nnot-a-molecule\n")
    summary = write_report(bad, tmp_path / "bad.html")
    page = check_page(summary, ["Validity and uniqueness", "Property distributions", "Molecules"])
    assert summary.n_images == 0 and "No valid molecules: nothing to plot." in page.text
    (tmp_path / "empty.smi").write_text("")
    with pytest.raises(MolgenError, match="holds no entries"):
        write_report(tmp_path / "empty.smi", tmp_path / "empty.html")


def test_crystal_and_peptide_sample_reports(tmp_path):
    crystals = tmp_path / "crystals.txt"  # `molgen sample` text layout: blocks, invalid ones commented
    crystals.write_text("\n\n".join(SMALL_CRYSTALS) + "\n\n# invalid sample\n1.0 1.0\nNa 0 0 0\n\n")
    summary = write_report(crystals, tmp_path / "c.html", title=f"crystals {XSS}")
    page = check_page(summary, ["Validity and uniqueness", "Composition and density", "Density and size distributions", "Structures"])
    assert summary.n_images == 1 + len(SMALL_CRYSTALS)
    assert "NaCl" in page.text and "SrTiO3" in page.text and f"crystals {XSS}" in page.text
    assert XSS not in Path(summary.path).read_text()
    assert metric_cells(summary)["entries"] == "7" and metric_cells(summary)["parsed"] == "6"

    fasta = tmp_path / "peptides.fasta"
    fasta.write_text("".join(f">pep{i}\n{s}\n" for i, s in enumerate(SMALL_PEPTIDES)) + f">bad\n{XSS}\n")
    reference = tmp_path / "ref.fasta"
    reference.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(SMALL_PEPTIDES[:4])))
    summary = write_report(fasta, tmp_path / "p.html", reference=str(reference))
    page = check_page(summary, ["Validity and uniqueness", "Sequences", "Length and charge distributions"])
    assert summary.n_images == 1 and SMALL_PEPTIDES[2] in page.text and XSS in page.text
    assert XSS not in Path(summary.path).read_text()


def test_evaluation_report_shows_metrics_and_the_evaluated_molecules(tmp_path):
    from molgen.workflows.evaluation import evaluate_file

    generated = tmp_path / "gen.smi"
    generated.write_text("\n".join(SMALL_SMILES + ["C1CC"]) + "\n")
    evaluate_file(generated, reference=None, training=None, metrics=["valid", "unique@5", "IntDiv", "FCD/Test"], k=(5,),
                  output=tmp_path / "eval.json")
    summary = write_report(tmp_path / "eval.json", tmp_path / "eval.html", max_depictions=4)
    assert summary.kind == "evaluation" and summary.n_images == 1 + 4
    page = check_page(summary, ["Metrics", "Evaluation details", "Property distributions", "Molecules"])
    assert "unique@5" in page.text and "no reference set given" in page.text  # unavailable metrics say why
    generated.unlink()
    page = check_page(write_report(tmp_path / "eval.json", tmp_path / "eval.html"), ["Metrics", "Evaluation details"])
    assert "is not found" in page.text


def test_optimize_report_has_curves_and_the_best_molecules(demo_dir, tmp_path):
    run = demo_dir.optimize_dir
    before = tree_digest(run)
    summary = write_report(run, tmp_path / "opt.html", max_depictions=6)
    assert summary.kind == "optimize" and summary.n_images == 3 + 6  # top-k, AUC, per-step + depictions
    page = check_page(summary, ["Campaign summary", "Optimization progress", "Best candidates", "Best structures"])
    best = json.loads((run / "summary.json").read_text())["best"][0]
    assert best["key"] in page.text and f"{best['score']:.3f}" in page.text
    assert tree_digest(run) == before  # read-only: no -wal/-shm files, nothing rewritten


def test_demo_report_puts_the_evaluation_and_the_campaign_on_one_page(demo_dir, tmp_path):
    # The demo wrote its own report through write_report; rebuild it elsewhere and check it.
    summary = write_report(demo_dir.out_dir, tmp_path / "demo.html", max_depictions=5)
    assert summary.kind == "demo" and demo_dir.report.is_file()
    page = check_page(summary, ["Metrics", "Evaluation details", "Property distributions", "Molecules",
                                "Campaign summary", "Optimization progress", "Best candidates", "Best structures"])
    assert summary.n_images == 1 + 5 + 3 + 5 and "IntDiv" in page.text and "osimertinib" in page.text


def test_an_empty_optimize_run_gets_notes(tmp_path):
    from molgen.loops.store import CandidateStore

    run = tmp_path / "run"
    CandidateStore(run / "candidates.sqlite").close()
    page = check_page(write_report(run, tmp_path / "r.html"),
                      ["Campaign summary", "Optimization progress", "Best candidates", "Best structures"])
    assert "No summary.json" in page.text and "No scored candidates yet" in page.text


# -- discovery runs ---------------------------------------------------------------------
class FixedProposals:
    """Stand-in strategy: proposes the hand-built crystals in turn (no model)."""

    name = "fixed"
    device = "cpu"

    def __init__(self):
        from molgen.domains.crystal import CrystalDomain

        self.domain = CrystalDomain()
        self.calls = 0

    def propose(self, n):
        start, self.calls = 4 * self.calls, self.calls + 1
        return [SMALL_CRYSTALS[(start + i) % len(SMALL_CRYSTALS)] for i in range(n)]

    def update(self, texts, keys, rewards):
        return {"loss": 0.0}

    def state(self):
        return {}, {"calls": self.calls}

    def load_state(self, tensors, data):
        self.calls = data["calls"]


def relax_by_volume(payload):
    """Stand-in potential: energy from the volume per atom; five-site cells (the perovskite) diverge."""
    from pymatgen.core import Structure

    structure = Structure.from_dict(payload["structure"])
    if len(structure) == 5:
        return {"status": "diverged", "error": "volume ratio 5.0 outside [1/3, 3]", "seconds": 0.0}
    energy = -structure.volume / len(structure) / 4.0
    return {"status": "ok", "energy_per_atom": energy, "formation_energy_per_atom": energy / 4.0 + 0.5,
            "final_structure": structure.as_dict(), "seconds": 0.0}


def test_discover_report_has_the_funnel_and_the_selected_structures(tmp_path):
    from molgen.workflows.discovery import DiscoveryConfig, MaterialsDiscovery
    from molgen.core.executors import SerialExecutor
    from molgen.scoring.objective import Objective

    config = DiscoveryConfig.model_validate({
        "rounds": 2, "per_round": 4,
        "relax": {"per_round": 2, "budget": 3, "executor": "serial"},
        "report": {"novel": None, "nonmetal": None, "gap": "abundance", "window": [1.0, 1e9]},
    })
    objective = Objective.from_spec({
        "name": "abundant", "components": [{"type": "crustal_abundance", "name": "abundance",
                                            "transform": {"type": "sigmoid", "low": 1, "high": 1000}}],
        "filters": [{"type": "structure_valid", "min": 1}, {"type": "composition_valid", "min": 1}],
    })
    run = tmp_path / "run"
    MaterialsDiscovery(FixedProposals(), objective, run, config, relax_fn=relax_by_volume, executor=SerialExecutor()).run()
    with (run / "selected.csv").open() as handle:
        selected = list(csv.DictReader(handle))
    assert {"ok", "diverged"} <= {e["status"] for e in selected}  # drawn from a relaxed CIF, and as generated
    summary = write_report(run, tmp_path / "d.html")
    assert summary.kind == "discover"
    page = check_page(summary, ["Discovery summary", "Funnel per round", "Selected structures",
                                "Best candidates by cheap score", "Best candidate structures"])
    with (run / "rounds.csv").open() as handle:
        n_stored = sum(int(r["new"]) for r in csv.DictReader(handle))
    # funnel + each selected structure (relaxed CIF, else as generated) + each stored candidate
    assert summary.n_images == 1 + len(selected) + n_stored
    assert "shown as generated" in page.text and "relaxed" in page.text


# -- errors -----------------------------------------------------------------------------
def test_unusable_sources_and_outputs_are_clear_errors(tmp_path):
    smi = tmp_path / "a.smi"
    smi.write_text("CCO\n")
    with pytest.raises(MolgenError, match="no such file"):
        write_report(tmp_path / "missing.smi", tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    (tmp_path / "picture.png").write_bytes(b"\x89PNG")
    for source in (tmp_path / "empty", tmp_path / "notes.json", tmp_path / "picture.png"):
        with pytest.raises(MolgenError, match="training run directory.*sample file.*evaluation report.*optimize run.*discover run"):
            write_report(source, tmp_path / "r.html")
    with pytest.raises(MolgenError, match=r"\.html suffix"):
        write_report(smi, smi)  # never over the source
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MolgenError, match="cannot write"):
        write_report(smi, blocker / "r.html")
    with pytest.raises(MolgenError, match="not found|no .*data set|unknown"):
        write_report(smi, tmp_path / "r.html", reference=str(tmp_path / "nope.smi"))
    assert smi.read_text() == "CCO\n" and not list(tmp_path.glob("*.html")) and not list(tmp_path.glob(".*.tmp"))
