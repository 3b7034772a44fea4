"""Report of an ask/tell campaign (``molgen campaign``): budget and counts,
best and top-10 mean of the measurements batch by batch, the best measured
candidates with pictures, and what is still pending in the lab."""

from __future__ import annotations

from pathlib import Path

from molgen.report.depict import molecule_svg
from molgen.report.figures import line_plot
from molgen.report.files import read_json_file
from molgen.report.html import Image, Page, flatten
from molgen.report.store import ReadOnlyStore

SETTINGS_NAME = "campaign.json"
STORE_NAME = "candidates.sqlite"
TOP_ROWS = 50


def is_campaign_run(path: Path) -> bool:
    """A directory made by ``molgen campaign new``."""
    return (path / SETTINGS_NAME).is_file()


def build_campaign(page: Page, run_dir: Path, *, max_depictions: int) -> None:
    """All sections of a campaign report."""
    settings = read_json_file(run_dir / SETTINGS_NAME)
    store_path = run_dir / STORE_NAME
    asks = []
    if store_path.is_file():
        with ReadOnlyStore(store_path) as store:
            asks = store.asks()
    campaign = settings.get("campaign", {})
    sign = 1.0 if campaign.get("maximize", True) else -1.0
    measured = [a for a in asks if a["status"] == "measured"]
    counts = {s: sum(a["status"] == s for a in asks) for s in ("pending", "measured", "failed")}
    summary = page.section("Summary")
    summary.key_values([("generator", settings.get("generator")), ("objective (cheap fidelity)", settings.get("objective") or "none"),
                        ("budget", campaign.get("budget")), ("asked", len(asks)), *counts.items(),
                        ("direction", "maximize" if sign > 0 else "minimize")])
    summary.key_values(flatten({k: v for k, v in campaign.items() if k != "budget"}), caption="selection settings")
    if not measured:
        summary.note("no measurements yet: the progress and best-candidate sections appear once the lab reports values")
    else:
        _progress_section(page, asks, sign)
        _best_section(page, sorted(measured, key=lambda a: (-sign * a["value"], a["id"]))[:TOP_ROWS], max_depictions)
    pending = [a for a in asks if a["status"] == "pending"]
    if pending:
        page.section("Pending in the lab").table(
            ["id", "batch", "text", "predicted", "std", "why"],
            [[a["id"], a["batch"], a["text"], a["mean"], a["std"], a["why"]] for a in pending[:TOP_ROWS]], text_columns=(2, 5),
            caption=f"{len(pending)} pending" + (f" (first {TOP_ROWS} shown)" if len(pending) > TOP_ROWS else ""))
    failed = [a for a in asks if a["status"] == "failed"]
    if failed:
        page.section("Failed measurements").table(["id", "batch", "text", "error"],
                                                  [[a["id"], a["batch"], a["text"], a["error"]] for a in failed[:TOP_ROWS]],
                                                  text_columns=(2, 3))


def _progress_section(page: Page, asks: list[dict], sign: float) -> None:
    batches = sorted({a["batch"] for a in asks})
    values: list[float] = []
    rows, best, top10 = [], [], []
    for b in batches:
        values += [a["value"] for a in asks if a["batch"] == b and a["status"] == "measured"]
        ordered = sorted(values, key=lambda v: -sign * v)
        if ordered:
            best.append(ordered[0])
            top10.append(sum(ordered[:10]) / len(ordered[:10]))
            rows.append([b, len(values), ordered[0], top10[-1]])
    section = page.section("Progress by batch")
    xs = [r[0] for r in rows]
    section.image(Image.png(line_plot([("best", xs, best), ("top-10 mean", xs, top10)], "batch", "measured value"),
                            "best and top-10 mean of the measurements by batch"),
                  caption="best and top-10 mean of every measurement made up to each batch")
    section.table(["batch", "measured so far", "best so far", "top-10 mean so far"], rows)


def _best_section(page: Page, best: list[dict], max_depictions: int) -> None:
    section = page.section("Best measured candidates")
    pictures = []
    for a in best[:max_depictions]:
        image = molecule_svg(a["key"])
        if image is not None:
            pictures.append((image, [f"{a['id']}: {a['value']:.4g}"], a["text"]))
    if pictures:
        section.grid(pictures)
    section.table(["id", "batch", "text", "measured", "predicted at ask", "std at ask", "why chosen"],
                  [[a["id"], a["batch"], a["text"], a["value"], a["mean"], a["std"], a["why"]] for a in best], text_columns=(2, 6))
