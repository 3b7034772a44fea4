"""Energy above the convex hull of known phases, under one energy model.

Stability of a generated crystal is its distance to the convex hull of
formation energies of the phases already known in its chemical system. The
hull here is built with one consistent energy model, the CHGNet potential
that also relaxes candidates, so a candidate and the phases it competes with
are measured alike:

* known phases: the structures of registered crystal data sets (by default
  ``mp20-biternary``), CHGNet energies of their stored (DFT-relaxed)
  geometries, computed once and cached under ``MOLGEN_HOME/hull``;
* elemental references: :func:`~molgen.physics.relaxation.elemental_references`
  (CHGNet-relaxed, cached);
* one pymatgen :class:`~pymatgen.analysis.phase_diagram.PhaseDiagram` per
  chemical system asked for (the phases whose elements it contains), built on
  first use.

Known phases are evaluated at their stored geometry, not relaxed with
CHGNet, which would cost hours for thousands of phases; a relaxed candidate
therefore sits slightly lower relative to them than after a full relaxation
of both. ``benchmarks/bench_hull.py`` measures that offset and how CHGNet's
hull distances of the known phases compare with the data set's DFT values.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from molgen.core.errors import MolgenError
from molgen.core.paths import molgen_home
from molgen.core.serialization import write_json
from molgen.physics.relaxation import RelaxSettings, _calculator, elemental_references

logger = logging.getLogger(__name__)

_CACHE_FORMAT = 1
#: Data sets whose structures make the default hull.
DEFAULT_HULL_SOURCES = ("mp20-biternary",)


@dataclass(frozen=True)
class KnownPhase:
    """One structure of a data set with its energy under the potential.

    Attributes:
        source: Data set name.
        line: Its record's line in the data file (the cache key).
        formula: Reduced formula.
        composition: pymatgen ``Composition``.
        energy_per_atom: eV/atom (NaN when the potential failed on it).
        reference_e_above_hull: The data set's own ``e_above_hull`` (DFT), if it has one.
    """

    source: str
    line: int
    formula: str
    composition: Any
    energy_per_atom: float
    reference_e_above_hull: float | None


def static_energies(structures: Sequence[Any], model: str = "chgnet-0.3.0", device: str = "cpu",
                    batch_size: int = 32) -> np.ndarray:
    """Energy per atom of each structure at its given geometry.

    Args:
        structures: pymatgen structures.
        model: Potential name (see :data:`~molgen.physics.relaxation.MODELS`).
        device: Torch device.
        batch_size: Structures per CHGNet batch.

    Returns:
        ``[n]`` eV/atom; NaN where the potential failed on a structure.
    """
    net = _calculator(model, device).model
    out = np.full(len(structures), np.nan)

    def predict(items: Sequence[Any]) -> list[float]:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = net.predict_structure(list(items), task="e", batch_size=batch_size)
        result = result if isinstance(result, list) else [result]
        return [float(np.asarray(r["e"]).reshape(-1)[0]) for r in result]

    for start in range(0, len(structures), batch_size):
        chunk = structures[start: start + batch_size]
        try:
            out[start: start + len(chunk)] = predict(chunk)
        except Exception:  # one bad structure fails its batch: retry one by one
            for i, structure in enumerate(chunk):
                try:
                    out[start + i] = predict([structure])[0]
                except Exception as exc:
                    logger.warning("no energy for structure %d: %s: %s", start + i, type(exc).__name__, exc)
    return out


def _cache_path(model: str, source: str, sha256: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in f"{model}-{source}-{sha256[:12]}")
    return molgen_home() / "hull" / f"{safe}.json"


def _read_energy_cache(path: Path, model: str, sha256: str) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
        if data.get("format") != _CACHE_FORMAT or data.get("model") != model or data.get("sha256") != sha256:
            raise ValueError("format, model or data mismatch")
        # null: the potential failed on that structure; keep it so it is not retried
        return {str(k): math.nan if v is None else float(v) for k, v in data["energies"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("ignoring unreadable hull cache %s (%s); recomputing", path, exc)
        return {}


def _write_energy_cache(path: Path, model: str, source: str, sha256: str, energies: dict[str, float]) -> None:
    """Atomic write, so an interrupted run keeps what it had (NaN is written as null)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"format": _CACHE_FORMAT, "model": model, "source": source, "sha256": sha256,
                          "energies": energies})
    except OSError as exc:
        logger.warning("could not write hull cache %s: %s", path, exc)


def known_phases(source: str, settings: RelaxSettings = RelaxSettings(), device: str = "cpu", batch_size: int = 32,
                 progress: Callable[[int, int], None] | None = None) -> list[KnownPhase]:
    """The structures of a registered crystal data set with their energies.

    Energies missing from the cache are computed in chunks and saved after
    each, so an interrupted run resumes where it stopped.

    Args:
        source: Registered crystal data set (e.g. ``mp20-biternary``).
        settings: Its ``model`` picks the potential.
        device: Torch device.
        batch_size: Structures per CHGNet batch.
        progress: Called with ``(done, total)`` after each chunk.

    Returns:
        One :class:`KnownPhase` per parsed structure.

    Raises:
        DataError: unknown or missing data set.
    """
    from molgen.datasets.loading import load_texts, resolve_source
    from molgen.domains.crystal import CrystalDomain

    path, spec = resolve_source(source)
    if spec is None:
        raise MolgenError(f"hull sources are registered data sets (see `molgen datasets`), got {source!r}")
    sha256 = spec.sha256 or ""
    wanted = ("e_above_hull",) if "e_above_hull" in (spec.targets or ()) else ()
    loaded = load_texts(source, CrystalDomain(), on_invalid="skip", targets=wanted, keep_objects=True)
    model = settings.model
    # Keyed by the data file, not the split: every split of one file shares its energies.
    cache = _cache_path(model, Path(spec.relpath).name.split(".")[0], sha256)
    energies = _read_energy_cache(cache, model, sha256)
    todo = [i for i, line in enumerate(loaded.lines) if str(line) not in energies]
    chunk = 512
    for start in range(0, len(todo), chunk):
        rows = todo[start: start + chunk]
        values = static_energies([loaded.objects[i] for i in rows], model, device, batch_size)
        energies.update({str(loaded.lines[i]): float(v) for i, v in zip(rows, values)})
        _write_energy_cache(cache, model, spec.relpath, sha256, energies)
        if progress is not None:
            progress(min(start + chunk, len(todo)), len(todo))
    dft = loaded.targets.get("e_above_hull") if loaded.targets else None
    phases = []
    for i, (line, structure) in enumerate(zip(loaded.lines, loaded.objects)):
        energy = energies.get(str(line))
        composition = structure.composition.element_composition
        reference = float(dft[i]) if dft is not None and math.isfinite(dft[i]) else None
        phases.append(KnownPhase(source, int(line), composition.reduced_formula, composition,
                                 float("nan") if energy is None else float(energy), reference))
    return phases


class ConvexHull:
    """Energies above the hull of known phases, one phase diagram per chemical system.

    Args:
        phases: Known phases (their NaN energies are left out).
        references: ``{element: eV/atom}`` elemental references under the same potential.

    Example::

        hull = ConvexHull.from_sources()          # mp20-biternary under CHGNet
        hull.e_above_hull(relaxed.composition, relaxed_energy_per_atom)
    """

    def __init__(self, phases: Iterable[KnownPhase], references: dict[str, float]):
        from pymatgen.analysis.phase_diagram import PDEntry

        self.references = dict(references)
        self.phases = [p for p in phases if math.isfinite(p.energy_per_atom)]
        self._by_system: dict[frozenset[str], list[Any]] = {}
        for phase in self.phases:
            system = frozenset(el.symbol for el in phase.composition)
            entry = PDEntry(phase.composition, phase.energy_per_atom * phase.composition.num_atoms, name=phase.formula)
            self._by_system.setdefault(system, []).append(entry)
        self._diagrams: dict[frozenset[str], Any] = {}

    @classmethod
    def from_sources(cls, sources: Sequence[str] = DEFAULT_HULL_SOURCES, settings: RelaxSettings = RelaxSettings(),
                     device: str = "cpu", progress: Callable[[int, int], None] | None = None) -> "ConvexHull":
        """The hull of registered data sets (energies cached under ``MOLGEN_HOME/hull``).

        Args:
            sources: Registered crystal data set names.
            settings: Its ``model`` picks the potential.
            device: Torch device.
            progress: Called with ``(done, total)`` while energies are computed.

        Returns:
            The hull.
        """
        phases = [p for source in sources for p in known_phases(source, settings, device, progress=progress)]
        elements = {el.symbol for p in phases for el in p.composition}
        return cls(phases, elemental_references(elements, settings, device=device))

    def elements(self) -> set[str]:
        """Elements with a reference (a candidate must consist of these)."""
        return set(self.references)

    def _diagram(self, system: frozenset[str]):
        if system not in self._diagrams:
            from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
            from pymatgen.core import Composition

            entries = [PDEntry(Composition({el: 1}), self.references[el], name=el) for el in system]
            for size in range(2, len(system) + 1):
                for subset in itertools.combinations(sorted(system), size):
                    entries.extend(self._by_system.get(frozenset(subset), []))
            self._diagrams[system] = PhaseDiagram(entries)
        return self._diagrams[system]

    def e_above_hull(self, composition: Any, energy_per_atom: float) -> float | None:
        """Energy above the hull (eV/atom; negative below it, i.e. a new ground state).

        Args:
            composition: pymatgen ``Composition`` (or a formula string).
            energy_per_atom: The candidate's energy under the same potential.

        Returns:
            eV/atom, or None when the energy is not finite or an element has
            no reference.
        """
        from pymatgen.analysis.phase_diagram import PDEntry
        from pymatgen.core import Composition

        if energy_per_atom is None or not math.isfinite(energy_per_atom):
            return None
        composition = Composition(composition).element_composition
        system = frozenset(el.symbol for el in composition)
        if not system or not system <= set(self.references):
            return None
        entry = PDEntry(composition, energy_per_atom * composition.num_atoms)
        diagram = self._diagram(system)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True, check_stable=False)
        return float(e_hull)

    def known_phase_distances(self) -> list[tuple[KnownPhase, float | None]]:
        """Each known phase's own distance to the hull (>= 0; 0 on the hull)."""
        return [(p, self.e_above_hull(p.composition, p.energy_per_atom)) for p in self.phases]
