"""``molgen evaluate --sun``: S.U.N. rate of a file of generated crystals.

Reads the structures, relaxes the valid ones with CHGNet in a process pool
(one torch thread per worker), builds (or reads from the cache) the convex
hull of known phases and scores the set with
:func:`molgen.metrics.sun.sun_report`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

from molgen.core.errors import MolgenError

#: Relaxation of candidates for S.U.N.: CHGNet's defaults in molgen (FIRE,
#: fmax 0.05 eV/A, 200 steps, cell relaxed), without the formation-energy proxy.
SUN_RELAX_SETTINGS = {"formation_energy": False}


def _relax_worker(payload: dict[str, Any] | None) -> dict[str, Any] | None:
    if payload is None:
        return None
    import torch

    torch.set_num_threads(1)  # CHGNet on small cells slows down with shared threads
    from molgen.physics.relaxation import relax_structure

    return relax_structure(payload)


def relax_all(structures: Sequence[Any | None], jobs: int = 1,
              progress: Callable[[str], None] | None = None) -> list[dict[str, Any] | None]:
    """CHGNet relaxations of the structures (None stays None), serially or in
    ``jobs`` spawned worker processes; a crashed worker is a ``failed`` result.
    ``progress`` hears how many are done every 25 structures."""
    from molgen.core.executors import TaskFailure, make_executor

    rows = [i for i, s in enumerate(structures) if s is not None]
    payloads = [{"structure": structures[i].as_dict(), "settings": SUN_RELAX_SETTINGS} for i in rows]
    out: list[dict[str, Any] | None] = [None] * len(structures)
    with make_executor("process" if jobs > 1 else "serial", jobs) as executor:
        for index, result in executor.map(_relax_worker, payloads):
            if isinstance(result, TaskFailure):
                result = {"status": "failed", "error": result.error}
            out[rows[index]] = result
            done = sum(r is not None for r in out)
            if progress and (done % 25 == 0 or done == len(rows)):
                progress(f"relaxed {done} of {len(rows)}")
    return out


def read_crystals(path: str | Path, n: int | None = None) -> tuple[list[Any | None], int]:
    """Generated crystals of a file or folder (see
    :func:`~molgen.domains.crystal.io.iter_structure_texts`), invalid ones as None.

    Returns:
        ``(structures, n_unparsable)``.
    """
    from molgen.core.errors import ParseError
    from molgen.domains.crystal import CrystalDomain
    from molgen.domains.crystal.io import iter_structure_texts

    domain = CrystalDomain()
    out, bad = [], 0
    for _, text, _ in iter_structure_texts(Path(path)):
        if n is not None and len(out) >= n:
            break
        try:
            structure = domain.parse(text)
        except ParseError:
            structure, bad = None, bad + 1
        out.append(structure if structure is not None and domain.is_valid(structure) else None)
    return out, bad


def evaluate_sun(
    structures: Sequence[Any | None],
    training: str,
    *,
    hull_sources: Sequence[str] = ("mp20-biternary",),
    threshold: float = 0.1,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
    relax_sample: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """S.U.N. report of generated structures.

    Args:
        structures: Valid structures (None for invalid or unparsable ones).
        training: Registered data set or file of training crystals (novelty;
            the known crystals of elements, as ASE tabulates them, count as
            known too).
        hull_sources: Registered data sets whose phases make the hull.
        threshold: eV/atom above hull still called stable.
        jobs: Relaxation worker processes.
        progress: Called with a short message per stage.
        relax_sample: Relax only a seeded random sample of this many valid
            structures and estimate the stable and S.U.N. rates from it
            (uniqueness and novelty then judged before relaxation); None or
            at least the number of valid structures: relax them all.
        seed: Seed of that sample.

    Returns:
        :func:`~molgen.metrics.sun.sun_report`'s dict plus ``"seconds"`` and
        the settings used.

    Raises:
        MolgenError: chgnet missing, no structures, or a bad threshold.
    """
    from molgen.datasets.loading import load_texts
    from molgen.domains.crystal import CrystalDomain
    from molgen.metrics.sun import sun_report
    from molgen.physics.hull import ConvexHull
    from molgen.physics.relaxation import _chgnet_model_module, known_elemental_crystals

    if not structures:
        raise MolgenError("no structures to evaluate")
    if not threshold >= 0:
        raise MolgenError(f"--e-hull-threshold must be >= 0 eV/atom, got {threshold}")
    if relax_sample is not None and relax_sample < 1:
        raise MolgenError(f"--relax-sample must be at least 1, got {relax_sample}")
    valid = [i for i, s in enumerate(structures) if s is not None]
    sampled = None
    if relax_sample is not None and relax_sample < len(valid):
        import numpy as np

        sampled = sorted(int(i) for i in np.random.default_rng(seed).choice(valid, relax_sample, replace=False))
        chosen = set(sampled)
        structures_to_relax = [s if i in chosen else None for i, s in enumerate(structures)]
    else:
        structures_to_relax = list(structures)
    _chgnet_model_module()  # the install hint before any work
    say = progress or (lambda message: None)
    start = time.perf_counter()
    say(f"hull of {', '.join(hull_sources)} (CHGNet energies cached under MOLGEN_HOME/hull)")
    hull = ConvexHull.from_sources(tuple(hull_sources))
    say(f"training structures: {training}")
    train = load_texts(training, CrystalDomain(), on_invalid="skip", keep_objects=True, targets=()).objects
    say(f"relaxing {sum(s is not None for s in structures_to_relax)} of {len(valid)} valid structures with CHGNet "
        f"on {jobs} worker(s)")
    # The training set may hold no elements (mp20-biternary): a sample of a known metal is not novel.
    elements = {s.composition.elements[0].symbol for s in structures if s is not None and len(s.composition.elements) == 1}
    known_elements = known_elemental_crystals(elements)
    relaxations = relax_all(structures_to_relax, jobs, progress=say)
    report = sun_report(structures, relaxations, hull, list(train) + known_elements, threshold=threshold, progress=say,
                        sampled=sampled)
    report["settings"] = {"training": training, "novelty_reference": f"{training} + {len(known_elements)} elemental "
                          "crystals (ASE reference states)", "hull_sources": list(hull_sources), "threshold": threshold,
                          "potential": "chgnet-0.3.0", "relaxation": "FIRE, fmax 0.05 eV/A, 200 steps, cell relaxed",
                          "known_phases": len(hull.phases), "relax_sample": relax_sample, "seed": seed}
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report
