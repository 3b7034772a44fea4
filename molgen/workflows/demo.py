"""The main job on the embedded default: what ``make demo`` (``molgen demo``)
shows a new user in a few minutes, with nothing but the installed package.

1. sample the shipped ZINC250k prior (``zinc250k``),
2. evaluate the samples (validity, uniqueness, diversity, structural-alert
   filters),
3. steer the prior toward a PMO task (osimertinib MPO) for a few hundred
   oracle calls,
4. write one self-contained HTML report of all three.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from molgen.core.errors import MolgenError

DEMO_PRIOR = "zinc250k"
DEMO_OBJECTIVE = "pmo/osimertinib_mpo"
#: Metrics computed without a reference set (fast, always available).
INTRINSIC_METRICS = ("valid", "unique@1000", "IntDiv", "IntDiv2", "Filters")


@dataclass
class DemoResult:
    """Where the demo's files are and its headline figures."""

    out_dir: Path
    report: Path
    samples: Path
    evaluation: Path
    optimize_dir: Path
    figures: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(
    out_dir: str | Path,
    *,
    n_samples: int = 1000,
    budget: int = 300,
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Sample, evaluate, optimise and report, on the shipped prior.

    Args:
        out_dir: Demo directory (created; an existing demo there needs
            ``overwrite``).
        n_samples: Molecules sampled from the prior.
        budget: Oracle calls of the optimisation.
        seed: Seed of sampling and optimisation.
        progress: Show progress bars.
        overwrite: Replace an earlier demo in ``out_dir``.
        log: Where progress lines go.

    Returns:
        Paths and figures.

    Raises:
        MolgenError: bad sizes, or ``out_dir`` holds an earlier demo and
            ``overwrite`` is False.
    """
    from molgen.backbones.base import Generator
    from molgen.report import write_report
    from molgen.workflows.evaluation import evaluate_file
    from molgen.workflows.optimization import optimize
    from molgen.workflows.sampling import sample_to_file

    if n_samples < 1 or budget < 1:
        raise MolgenError("the demo needs at least one sample and one oracle call")
    out = Path(out_dir)
    marker = out / "demo.json"
    from molgen.core.outputs import prepare_run_dir

    prepare_run_dir(out, overwrite=overwrite, kind="demo")
    marker.write_text('{"kind": "molgen-demo"}\n')
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    log(f"1/4 sampling {n_samples:,} molecules from the shipped {DEMO_PRIOR} prior")
    model = Generator.from_pretrained(DEMO_PRIOR)
    samples = out / "samples.smi"
    stats = sample_to_file(model, n_samples, samples, seed=seed, progress=progress)
    seconds["sample"] = time.perf_counter() - start

    start = time.perf_counter()
    # Intrinsic metrics only: the same demo with or without the data mirror, and no minutes spent on
    # reference statistics (`molgen evaluate` against MOSES is one command away).
    log("2/4 evaluating the samples (validity, uniqueness, diversity, filters)")
    evaluation = out / "evaluation.json"
    k = min(1000, n_samples)
    metrics = [m if m != "unique@1000" else f"unique@{k}" for m in INTRINSIC_METRICS]
    report = evaluate_file(samples, reference=None, training=None, metrics=metrics, k=(k,), output=evaluation)
    seconds["evaluate"] = time.perf_counter() - start

    start = time.perf_counter()
    log(f"3/4 optimising {DEMO_OBJECTIVE} for {budget} oracle calls (REINVENT on the prior)")
    opt_dir = out / "optimize"
    settings = {"prior": DEMO_PRIOR, "objective": DEMO_OBJECTIVE, "seed": seed, "device": "cpu",
                "campaign": {"budget": budget, "batch_size": 64, "log_every": 25}}
    result = optimize(settings, opt_dir, progress=progress)
    seconds["optimize"] = time.perf_counter() - start

    start = time.perf_counter()
    log("4/4 writing the report")
    html = write_report(out, out / "report.html", title="molgen demo: shipped ZINC250k prior")
    seconds["report"] = time.perf_counter() - start

    figures = {"validity": stats.validity, "uniqueness": stats.uniqueness,
               "top1": result.summary["top1"], "top10": result.summary["top10"], "calls": result.calls}
    figures.update({name: float(v) for name, v in report.values.items() if isinstance(v, (int, float))})
    return DemoResult(out, Path(html.path), samples, evaluation, opt_dir, figures, seconds)
