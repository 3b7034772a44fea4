"""Report of an optimisation run directory (``molgen optimize``): PMO's top-k
and AUC against oracle calls, the per-step learning signal, and the best
candidates with their scores and pictures."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from molgen.report.files import read_json_file
from molgen.report.html import Image, Page, Section, flatten
from molgen.report.store import ReadOnlyStore, StoredCandidate

STORE_NAME = "candidates.sqlite"
PROGRESS_NAME = "progress.csv"
SUMMARY_NAME = "summary.json"
SETTINGS_NAME = "optimize.json"
TOP_ROWS = 100
SUMMARY_KEYS = ("strategy", "objective", "budget", "calls", "steps", "stop_reason", "top1", "top10", "top100",
                "auc_top1", "auc_top10", "auc_top100", "sampled", "valid_fraction", "seconds")


def is_optimize_run(path: Path) -> bool:
    """A directory with a progress log, campaign settings or a candidate store."""
    return any((path / name).is_file() for name in (PROGRESS_NAME, SETTINGS_NAME, STORE_NAME))


def run_domain(settings: dict[str, Any], fallback_texts: list[str]) -> str:
    """The domain of a run's prior (from its ``config.json``), else a guess
    from the stored texts (SMILES when RDKit reads them)."""
    prior = settings.get("prior") or settings.get("generator")
    if prior:
        try:
            from molgen.pretrained import resolve_model_path

            config = read_json_file(resolve_model_path(prior) / "config.json")
            name = (config.get("domain") or {}).get("name")
            if name:
                return str(name)
        except Exception:  # noqa: BLE001  (the prior may be gone; guess from the texts)
            pass
    from rdkit import Chem, rdBase

    from molgen.domains.crystal.text import looks_like_crystal_text

    head = fallback_texts[:20]
    if head and any(looks_like_crystal_text(t) or t.lstrip().startswith("data_") for t in head):
        return "crystal"
    with rdBase.BlockLogs():
        if any(Chem.MolFromSmiles(t) is not None for t in head):
            return "smiles"
    return "unknown"


def read_progress(path: Path) -> list[dict[str, float]]:
    """Rows of ``progress.csv`` as numbers."""
    rows = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                rows.append({k: float(v) for k, v in row.items() if k})
            except (TypeError, ValueError):
                continue
    return rows


def build_optimization(page: Page, run_dir: Path, *, max_depictions: int) -> None:
    """All sections of an optimisation run."""
    settings = read_json_file(run_dir / SETTINGS_NAME) if (run_dir / SETTINGS_NAME).is_file() else {}
    summary = read_json_file(run_dir / SUMMARY_NAME) if (run_dir / SUMMARY_NAME).is_file() else None
    store = ReadOnlyStore(run_dir / STORE_NAME) if (run_dir / STORE_NAME).is_file() else None
    try:
        best = store.best(max(TOP_ROWS, max_depictions)) if store is not None else []
        calls, scores = store.scores_by_call() if store is not None else ([], [])
        steps = store.steps() if store is not None else []
    finally:
        if store is not None:
            store.close()
    domain = run_domain(settings, [c.text for c in best])
    page.header.append(f"objective: {settings.get('objective', (summary or {}).get('objective', '?'))} \u00b7 domain: {domain}")
    _summary_section(page, summary, settings, len(calls))
    _progress_section(page, run_dir, calls, scores, steps)
    if not best and (run_dir / "top100.csv").is_file():
        best = _from_export(run_dir / "top100.csv")
    _best_sections(page, best, domain, max_depictions, have_store=store is not None)


def _summary_section(page: Page, summary: dict | None, settings: dict, n_calls: int) -> None:
    section = page.section("Campaign summary")
    if summary is None:
        section.note(f"No {SUMMARY_NAME} (the run is in progress or was killed): {n_calls} oracle calls are stored so far.")
    else:
        shown = [(k, summary[k]) for k in SUMMARY_KEYS if k in summary]
        rest = {k: v for k, v in summary.items() if k not in SUMMARY_KEYS and k != "best"}
        section.key_values(shown + flatten(rest), caption="summary.json")
    if settings:
        section.key_values(flatten(settings), caption=SETTINGS_NAME)
    else:
        section.note(f"No {SETTINGS_NAME} in the run directory.")


def _progress_section(page: Page, run_dir: Path, calls: list[int], scores: list[float], steps: list[dict]) -> None:
    from molgen.report.figures import line_plot

    section = page.section("Optimization progress")
    path = run_dir / PROGRESS_NAME
    rows = read_progress(path) if path.is_file() else []
    if not rows:
        section.note(f"No {PROGRESS_NAME} rows yet: top-k and AUC curves appear after the first log_every calls.")
    else:
        x = [r["calls"] for r in rows]
        series = [(f"top-{k} mean", x, [r.get(f"top{k}", math.nan) for r in rows]) for k in (1, 10, 100)]
        finite = [(c, s) for c, s in zip(calls, scores) if math.isfinite(s)]
        scatter = ([c for c, _ in finite], [s for _, s in finite], "each oracle call") if finite else None
        section.image(Image.png(line_plot(series, "oracle calls", "score", scatter=scatter), alt="top-k against oracle calls"),
                      caption="Mean score of the best 1, 10 and 100 candidates found so far (PMO), over every scored candidate")
        auc = [("AUC of top-10 so far", x, [r.get("auc_top10_so_far", math.nan) for r in rows])]
        plot = line_plot(auc, "oracle calls", "AUC (fraction of the budget)", size=(6.4, 3.0))
        section.image(Image.png(plot, alt="AUC against oracle calls"),
                      caption="Area under the top-10 curve, normalised by the budget")
        shown = rows if len(rows) <= 25 else [rows[int(i * (len(rows) - 1) / 24)] for i in range(25)]
        section.table(["calls", "top-1", "top-10", "top-100", "AUC top-10 so far"],
                      [[int(r["calls"]), r.get("top1"), r.get("top10"), r.get("top100"), r.get("auc_top10_so_far")] for r in shown],
                      caption=f"{len(shown)} of {len(rows)} logged rows")
    if steps:
        x = [s["step"] for s in steps]
        valid = [s["valid"] / s["sampled"] if s.get("sampled") else math.nan for s in steps]
        reward = [math.nan if s.get("mean_reward") is None else s["mean_reward"] for s in steps]
        section.image(Image.png(line_plot([("valid fraction", x, valid), ("mean reward", x, reward)], "step", "value", size=(6.4, 3.0)),
                                alt="per-step validity and reward"),
                      caption=f"Per step: fraction of proposals that are valid and the mean shaped reward ({len(steps)} steps)")


def _from_export(path: Path) -> list[StoredCandidate]:
    """Best candidates from an exported ``top100.csv`` (when the store is gone)."""
    out = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                total = float(row.get("score") or "nan")
                out.append(StoredCandidate(int(row.get("call") or 0), row.get("key", ""), row.get("text", ""),
                                           int(row.get("step") or 0), total, row.get("rejected_by") or None,
                                           row.get("reason") or None, {}))
            except ValueError:
                continue
    return out


def _best_sections(page: Page, best: list[StoredCandidate], domain: str, max_depictions: int, have_store: bool) -> None:
    section = page.section("Best candidates")
    if not best:
        section.note("No scored candidates yet." if have_store else f"No {STORE_NAME} and no top100.csv in the run directory.")
        page.section("Best structures").note("Nothing to draw.")
        return
    names = sorted({n for c in best for n in c.components})
    rows = []
    for rank, c in enumerate(best[:TOP_ROWS], 1):
        comps = [c.components.get(n, {}).get("value") for n in names]
        rows.append([rank, c.call, c.step, c.total, *comps, c.rejected_by or c.reason or "", c.key])
    section.table(["rank", "call", "step", "score", *names, "rejected / failed", "key"], rows, text_columns=(len(names) + 5,),
                  caption=f"Best {len(rows)} candidates by score (component columns: transformed values)")
    pictures = page.section("Best structures")
    draw_candidates(pictures, best[:max(max_depictions, 0)], domain, max_depictions)


def draw_candidates(section: Section, cands: list[StoredCandidate], domain: str, max_depictions: int,
                    extra: dict[str, list[str]] | None = None) -> None:
    """A grid of candidate pictures with rank and score captions: molecules
    by their key (canonical SMILES), crystals from their stored text."""
    if max_depictions <= 0:
        section.note("Pictures turned off (max_depictions = 0).")
        return
    if domain == "crystal":
        from molgen.domains.crystal import CrystalDomain
        from molgen.report.crystals import structure_grid

        crystal = CrystalDomain()
        items = []
        for rank, c in enumerate(cands, 1):
            try:
                structure = crystal.parse(c.text)
            except Exception:  # noqa: BLE001
                continue
            items.append((structure, [f"#{rank} \u00b7 score {_score(c.total)}", *(extra or {}).get(c.key, [])]))
        drawn = structure_grid(section, items)
    elif domain in ("smiles", "selfies", "molgraph", "unknown"):
        from molgen.report.depict import molecule_svg

        items = []
        for rank, c in enumerate(cands, 1):
            image = molecule_svg(c.key) or molecule_svg(c.text)
            if image is not None:
                items.append((image, [f"#{rank} \u00b7 score {_score(c.total)} \u00b7 call {c.call}"], c.key))
        if items:
            section.grid(items)
        drawn = len(items)
    else:
        section.note(f"{domain} candidates have no pictures; see the table above.")
        return
    if drawn == 0:
        section.note("None of the candidates could be drawn.")
    elif drawn < len(cands):
        section.note(f"{len(cands) - drawn} of {len(cands)} candidates could not be drawn.")


def _score(value: float) -> str:
    return "\u2013" if not math.isfinite(value) else f"{value:.3f}"
