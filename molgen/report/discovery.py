"""Report of a materials-discovery run directory (``molgen discover``): the
funnel of each round, relaxation outcomes, and the selected (relaxed)
structures with pictures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from molgen.report.files import read_csv_rows, read_json_file
from molgen.report.optimization import draw_candidates
from molgen.report.html import Page, flatten
from molgen.report.store import ReadOnlyStore, StoredCandidate

ROUNDS_NAME = "rounds.csv"
SELECTED_NAME = "selected.csv"
SUMMARY_NAME = "summary.json"
SETTINGS_NAME = "discover.json"
STORE_NAME = "candidates.sqlite"
#: Funnel stages of rounds.csv, widest first, with their labels.
FUNNEL = (("sampled", "sampled"), ("decoded", "decoded"), ("distinct", "distinct"), ("new", "new"),
          ("pass_all", "pass all filters"), ("valid", "valid"), ("valid_novel", "valid and novel"),
          ("in_window", "in target window"), ("relaxed", "relaxed"), ("stable", "stable"))
RELAX_COLUMNS = ("relax_ok", "relax_unconverged", "relax_failed", "energy_per_atom_median", "energy_per_atom_min",
                 "energy_per_atom_max", "formation_proxy_median")
SELECTED_COLUMNS = ("key", "round", "score", "status", "stable", "energy_per_atom", "formation_energy_per_atom", "predicted_gap", "error")
TOP_ROWS = 20


def is_discovery_run(path: Path) -> bool:
    """A directory with a round log or discovery settings."""
    return (path / ROUNDS_NAME).is_file() or (path / SETTINGS_NAME).is_file()


def _value(text: str | None) -> Any:
    """A CSV cell as int, float, bool or the text itself."""
    if text is None or text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _typed_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV with typed cells (no file: no rows)."""
    return [{k: _value(v) for k, v in row.items()} for row in read_csv_rows(path)] if path.is_file() else []


def build_discovery(page: Page, run_dir: Path, *, max_depictions: int) -> None:
    """All sections of a discovery run."""
    settings = read_json_file(run_dir / SETTINGS_NAME) if (run_dir / SETTINGS_NAME).is_file() else {}
    summary = read_json_file(run_dir / SUMMARY_NAME) if (run_dir / SUMMARY_NAME).is_file() else None
    rounds, selected = _typed_rows(run_dir / ROUNDS_NAME), _typed_rows(run_dir / SELECTED_NAME)
    store = ReadOnlyStore(run_dir / STORE_NAME) if (run_dir / STORE_NAME).is_file() else None
    try:
        best = store.best(TOP_ROWS) if store is not None else []
        stored = store.by_keys([str(e.get("key")) for e in selected]) if store is not None else {}
        n_candidates = store.count() if store is not None else 0
    finally:
        if store is not None:
            store.close()
    preset = (settings.get("preset") or {}).get("name", "?")
    page.header.append(f"preset: {preset} \u00b7 generator: {settings.get('generator', '?')} \u00b7 {len(rounds)} rounds")
    _summary_section(page, summary, settings, n_candidates)
    _funnel_section(page, rounds)
    _selected_section(page, run_dir, selected, stored, max_depictions)
    _best_section(page, best, have_store=store is not None, max_depictions=max_depictions)


def _summary_section(page: Page, summary: dict | None, settings: dict, n_candidates: int) -> None:
    section = page.section("Discovery summary")
    if summary is None:
        section.note(f"No {SUMMARY_NAME} (the run is in progress or was killed): {n_candidates} candidates are stored so far.")
    else:
        keys = ("objective", "rounds", "candidates", "relaxations", "relaxation_status", "stable", "in_window_fraction_by_round")
        section.key_values(flatten({k: summary[k] for k in keys if k in summary}), caption=SUMMARY_NAME)
    if settings:
        section.key_values(flatten(settings), caption=SETTINGS_NAME)
    else:
        section.note(f"No {SETTINGS_NAME} in the run directory.")


def _funnel_section(page: Page, rounds: list[dict[str, Any]]) -> None:
    from molgen.report.figures import grouped_bars
    from molgen.report.html import Image

    section = page.section("Funnel per round")
    if not rounds:
        section.note(f"No {ROUNDS_NAME} rows yet: the first round has not finished.")
        return
    stages = [(col, label) for col, label in FUNNEL if any(isinstance(r.get(col), (int, float)) for r in rounds)]
    labels = [r.get("round") for r in rounds]
    series = [(label, [_num(r.get(col)) for r in rounds]) for col, label in stages]
    values = [v for _, vs in series for v in vs if v > 0]
    log = bool(values) and max(values) > 20 * min(values)  # e.g. 512 sampled and 3 stable: keep the small stages visible
    section.image(Image.png(grouped_bars(labels, series, "round", "structures", log=log), alt="funnel per round"),
                  caption="Each round from samples to relaxed, stable structures")
    filters = [k for k in rounds[0] if k.startswith("pass_") and k != "pass_all"]
    headers = ["round", *[label for _, label in stages], *filters, "in-window fraction"]
    rows = [[r.get("round"), *[r.get(col) for col, _ in stages], *[r.get(f) for f in filters], r.get("in_window_fraction")]
            for r in rounds]
    section.table(headers, rows)
    relax = [c for c in RELAX_COLUMNS if c in rounds[0]]
    if relax:
        section.table(["round", *relax], [[r.get("round"), *[r.get(c) for c in relax]] for r in rounds],
                      caption="relaxations (energies in eV/atom)")
    timing = [k for k in rounds[0] if k.startswith("seconds_")]
    if timing:
        section.table(["round", *[t[len("seconds_"):] for t in timing]], [[r.get("round"), *[r.get(t) for t in timing]] for r in rounds],
                      caption="wall time per stage (s)")


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _selected_section(page: Page, run_dir: Path, selected: list[dict[str, Any]], stored: dict[str, StoredCandidate],
                      max_depictions: int) -> None:
    section = page.section("Selected structures")
    if not selected:
        section.note(f"No {SELECTED_NAME}: no candidate has been relaxed (yet).")
        return
    columns = [c for c in SELECTED_COLUMNS if c in selected[0]]
    components = [c for c in selected[0] if c not in SELECTED_COLUMNS and c != "cif"]
    section.table([*columns, *components], [[e.get(c) for c in (*columns, *components)] for e in selected],
                  text_columns=(0,) if columns and columns[0] == "key" else (),
                  caption=f"{len(selected)} relaxed candidates, stable ones first (energies in eV/atom)")
    if max_depictions <= 0:
        section.note("Pictures turned off (max_depictions = 0).")
        return
    from molgen.report.crystals import structure_grid

    items, unrelaxed = [], 0
    for rank, entry in enumerate(selected[:max_depictions], 1):
        structure, label = _selected_structure(run_dir, entry, stored)
        if structure is None:
            continue
        unrelaxed += label == "as generated"
        state = "stable" if entry.get("stable") else str(entry.get("status", ""))
        items.append((structure, [f"#{rank} \u00b7 round {entry.get('round')} \u00b7 {state}",
                                  f"score {_fmt(entry.get('score'))} \u00b7 {label}"]))
    drawn = structure_grid(section, items)
    if drawn == 0:
        section.note("None of the selected structures could be drawn.")
    elif unrelaxed:
        section.note(f"{unrelaxed} structures are shown as generated: their relaxation gave no structure.")


def _selected_structure(run_dir: Path, entry: dict[str, Any], stored: dict[str, StoredCandidate]):
    """The relaxed structure (its CIF) when there is one, else the structure as generated."""
    from molgen.domains.crystal import CrystalDomain

    domain = CrystalDomain()
    cif = entry.get("cif")
    if isinstance(cif, str) and cif:
        path = (run_dir / cif).resolve()
        if path.is_file() and run_dir.resolve() in path.parents:  # a CSV must not point the report outside the run
            try:
                return domain.parse(path.read_text(errors="replace")), "relaxed"
            except Exception:  # noqa: BLE001
                pass
    cand = stored.get(str(entry.get("key")))
    if cand is not None:
        try:
            return domain.parse(cand.text), "as generated"
        except Exception:  # noqa: BLE001
            pass
    return None, ""


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) and math.isfinite(value) else str(value if value is not None else "\u2013")


def _best_section(page: Page, best: list[StoredCandidate], have_store: bool, max_depictions: int) -> None:
    section = page.section("Best candidates by cheap score")
    if not best:
        section.note("No scored candidates yet." if have_store else f"No {STORE_NAME} in the run directory.")
        return
    names = sorted({n for c in best for n in c.components})
    rows = [[rank, c.step, c.total, *[c.components.get(n, {}).get("raw") for n in names], c.rejected_by or "", c.key]
            for rank, c in enumerate(best, 1)]
    section.table(["rank", "round", "score", *names, "rejected by", "key"], rows, text_columns=(len(names) + 4,),
                  caption=f"Best {len(rows)} stored candidates by the objective (component columns: raw values)")
    if not any(c.rejected_by is None for c in best):
        section.note("Every one of them was rejected by a filter.")
    draw_candidates(page.section("Best candidate structures"), best[:max(max_depictions, 0)], "crystal", max_depictions)
