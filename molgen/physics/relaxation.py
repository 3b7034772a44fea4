"""Universal interatomic potential oracle: relax a crystal with CHGNet through
ASE and report its energy, a formation-energy proxy and how the relaxation
went (optional extra ``molgen[potential]``).

Every structure ends in one of five states, so a discovery loop can store
each outcome without special cases:

* ``ok``: converged below ``fmax``; energies are set.
* ``unconverged``: hit the step limit but stayed finite and sane; energies
  are set.
* ``rejected``: screened out before the model saw it (atoms closer than
  ``min_distance`` under periodic boundaries, a degenerate cell, no atoms).
* ``diverged``: the relaxation ran away (non-finite or out-of-bounds energy,
  volume blown up or collapsed).
* ``failed``: CHGNet, ASE or the input raised; ``error`` holds the reason.

The formation-energy proxy is measured against elemental references relaxed
with the same potential (see :func:`elemental_references`), so it is a
self-consistent ranking signal, not a DFT formation energy: no fitted
corrections (MP2020) are applied, and gas references are isolated molecules.

Threading is the caller's business. CHGNet's graphs for small cells gain
nothing from several torch threads and slow down sharply when cores are
shared (a 5-atom cell: 0.6 s with one thread, 18 s with two threads on two
cores of which one was busy), so run one thread per relaxation and get
parallelism from processes (:class:`molgen.core.executors.ProcessPoolExecutor`
sets its workers' threads).

The model is loaded from chgnet's own packaged checkpoint (chgnet reads it
with ``torch.load``); molgen writes only JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
from ase import Atoms, optimize
from ase.build import bulk
from ase.data import atomic_numbers, covalent_radii, reference_states
from pydantic import ConfigDict, Field, field_validator, model_validator
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

try:
    from ase.filters import FrechetCellFilter
except ImportError:  # ASE < 3.23
    from ase.constraints import ExpCellFilter as FrechetCellFilter

from molgen.core.config import StrictModel, validate
from molgen.core.errors import ConfigError, MolgenError
from molgen.core.paths import molgen_home
from molgen.core.serialization import write_json

logger = logging.getLogger(__name__)

INSTALL_HINT = "the interatomic potential needs the optional extra: pip install 'molgen[potential]' (chgnet)"

# molgen model name -> CHGNet.load(model_name=...)
MODELS = {"chgnet-0.3.0": "0.3.0", "chgnet-0.2.0": "0.2.0", "chgnet-r2scan": "r2scan"}

Status = Literal["ok", "unconverged", "rejected", "diverged", "failed"]


class RelaxSettings(StrictModel):
    """How a structure is relaxed and when the outcome counts as sane
    (immutable, so one instance can serve as a shared default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(200, gt=0, description="optimizer step limit")
    fmax: float = Field(0.05, gt=0, description="force convergence threshold (eV/A)")
    relax_cell: bool = Field(True, description="relax the lattice as well as the positions")
    min_distance: float = Field(0.5, ge=0, description="atoms closer than this (A, periodic) are rejected before relaxing")
    max_volume_ratio: float = Field(3.0, gt=1, description="final/initial volume outside [1/r, r] counts as diverged")
    energy_bounds: tuple[float, float] = Field((-30.0, 10.0), description="sane energy per atom (eV); outside = diverged")
    model: str = Field("chgnet-0.3.0", description="potential: " + ", ".join(MODELS))
    optimizer: Literal["FIRE", "BFGS", "LBFGS", "BFGSLineSearch", "LBFGSLineSearch", "MDMin"] = "FIRE"
    formation_energy: bool = Field(True, description="compute the formation-energy proxy (relaxes elemental references once)")

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"unknown potential model {value!r}; valid names: {', '.join(MODELS)}")
        return value

    @model_validator(mode="after")
    def _ordered_bounds(self) -> "RelaxSettings":
        low, high = self.energy_bounds
        if not low < high:
            raise ValueError(f"energy_bounds must be (low, high) with low < high, got {self.energy_bounds}")
        return self


@dataclass
class RelaxResult:
    """Outcome of one relaxation.

    Attributes:
        status: ``ok``, ``unconverged``, ``rejected``, ``diverged`` or ``failed``.
        error: Why the status is not ``ok`` (None when ok).
        energy_per_atom: Final total energy per atom (eV/atom); None when
            rejected, failed or non-finite.
        formation_energy_per_atom: Proxy against the potential's elemental
            references (eV/atom); None when unavailable.
        steps: Optimizer steps taken.
        seconds: Wall time of the relaxation (model loading excluded).
        final_structure: Relaxed pymatgen ``Structure`` (None when rejected,
            failed or non-finite).
        initial_volume: Cell volume before relaxing (A^3).
        final_volume: Cell volume after relaxing (A^3).
    """

    status: Status
    error: str | None = None
    energy_per_atom: float | None = None
    formation_energy_per_atom: float | None = None
    steps: int = 0
    seconds: float = 0.0
    final_structure: Any = None
    initial_volume: float | None = None
    final_volume: float | None = None

    @property
    def has_energy(self) -> bool:
        """Whether the energy can be used (``ok`` or ``unconverged``)."""
        return self.status in ("ok", "unconverged") and self.energy_per_atom is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the structure becomes pymatgen's ``as_dict()``."""
        data = asdict(self)
        data["final_structure"] = self.final_structure.as_dict() if self.final_structure is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RelaxResult":
        """Inverse of :meth:`to_dict`.

        Raises:
            MolgenError: unknown keys or a malformed structure.
        """
        data = dict(data)
        structure = data.pop("final_structure", None)
        try:
            result = cls(**data)
            result.final_structure = Structure.from_dict(structure) if structure is not None else None
        except (TypeError, KeyError, ValueError) as exc:
            raise MolgenError(f"malformed relaxation result: {exc}") from None
        return result


# --------------------------------------------------------------------------- model

_CALCULATORS: dict[tuple[str, str], Any] = {}


def _chgnet_model_module():
    try:
        import chgnet.model
    except ImportError as exc:
        raise MolgenError(f"{INSTALL_HINT} ({exc})") from None
    return chgnet.model


def _calculator(model: str, device: str):
    """The ASE calculator of ``model`` on ``device``, loaded once per process
    (CHGNet takes seconds to load, a small relaxation well under one)."""
    key = (model, device)
    if key not in _CALCULATORS:
        module = _chgnet_model_module()
        if model not in MODELS:
            raise ConfigError(f"unknown potential model {model!r}; valid names: {', '.join(MODELS)}")
        # CHGNet prints its device on load; keep the caller's stdout clean.
        with contextlib.redirect_stdout(io.StringIO()):
            net = module.CHGNet.load(model_name=MODELS[model], use_device=device, verbose=False)
            # "ignore": a lone atom (reference atoms, sparse crystals) is legal input.
            _CALCULATORS[key] = module.CHGNetCalculator(model=net, use_device=device, on_isolated_atoms="ignore")
    return _CALCULATORS[key]


# --------------------------------------------------------------------------- relaxation


@dataclass
class _Outcome:
    """Raw result of the optimizer, before any sanity judgement."""

    final_structure: Any
    energy: float  # total energy of the cell (eV)
    steps: int
    converged: bool


def _optimizer_class(name: str):
    return getattr(optimize, name)


def _cell_filter(atoms):
    return FrechetCellFilter(atoms)


def _run_relaxation(calculator, structure, *, steps: int, fmax: float, relax_cell: bool, optimizer: str) -> _Outcome:
    """Run the ASE optimizer (the one place that touches CHGNet numerics)."""
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calculator
    target = _cell_filter(atoms) if relax_cell else atoms
    opt = _optimizer_class(optimizer)(target, logfile=None)
    with warnings.catch_warnings():  # CHGNet warns on every step about a tensor-to-float conversion
        warnings.simplefilter("ignore")
        converged = bool(opt.run(fmax=fmax, steps=steps))
        energy = float(atoms.get_potential_energy())
    atoms.calc = None  # the calculator is shared; do not keep it alive through the structure
    return _Outcome(AseAtomsAdaptor.get_structure(atoms), energy, int(opt.nsteps), converged)


def _screen(structure, min_distance: float) -> str | None:
    """Reason to reject ``structure`` before relaxing it, or None."""
    if len(structure) == 0:
        return "structure has no atoms"
    volume = structure.volume
    if not math.isfinite(volume) or volume < 1e-3:
        return f"degenerate cell (volume {volume:.3g} A^3)"
    if not np.all(np.isfinite(structure.cart_coords)):
        return "non-finite atomic coordinates"
    shortest = min(structure.lattice.abc)  # an atom meets its own image one lattice vector away
    if min_distance > 0:
        # Cell-list search; includes images and coincident distinct atoms, not an atom with itself.
        distances = structure.get_neighbor_list(min_distance)[3]
        if len(distances):
            shortest = min(shortest, float(distances.min()))
    if shortest < min_distance:
        return f"atoms {shortest:.3f} A apart, closer than min_distance {min_distance} A"
    return None


def _judge(outcome: _Outcome, n_atoms: int, initial_volume: float, settings: RelaxSettings) -> tuple[Status, str | None]:
    structure = outcome.final_structure
    if not math.isfinite(outcome.energy):
        return "diverged", f"non-finite energy ({outcome.energy})"
    if not (np.all(np.isfinite(structure.lattice.matrix)) and np.all(np.isfinite(structure.cart_coords))):
        return "diverged", "non-finite lattice or coordinates"
    per_atom = outcome.energy / n_atoms
    low, high = settings.energy_bounds
    if not low <= per_atom <= high:
        return "diverged", f"energy {per_atom:.3f} eV/atom outside the bounds [{low}, {high}]"
    ratio = structure.volume / initial_volume
    limit = settings.max_volume_ratio
    if not 1.0 / limit <= ratio <= limit:
        return "diverged", f"volume changed by a factor {ratio:.3g} (allowed 1/{limit}..{limit})"
    if not outcome.converged:
        return "unconverged", f"not converged to fmax {settings.fmax} eV/A within {settings.steps} steps"
    return "ok", None


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _relax(structure, settings: RelaxSettings, device: str) -> RelaxResult:
    """Relax one structure; CHGNet/ASE errors become ``failed``."""
    initial_volume = _finite_or_none(float(structure.volume))
    reason = _screen(structure, settings.min_distance)
    if reason is not None:
        return RelaxResult("rejected", reason, initial_volume=initial_volume)
    start = time.perf_counter()
    try:
        calculator = _calculator(settings.model, device)
        start = time.perf_counter()
        outcome = _run_relaxation(
            calculator, structure, steps=settings.steps, fmax=settings.fmax,
            relax_cell=settings.relax_cell, optimizer=settings.optimizer,
        )
    except Exception as exc:  # a broken structure must not stop a campaign
        return RelaxResult("failed", f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - start,
                           initial_volume=initial_volume)
    seconds = time.perf_counter() - start
    status, error = _judge(outcome, len(structure), structure.volume, settings)
    final = outcome.final_structure
    finite = bool(np.all(np.isfinite(final.lattice.matrix)) and np.all(np.isfinite(final.cart_coords)))
    result = RelaxResult(
        status, error,
        energy_per_atom=_finite_or_none(outcome.energy / len(structure)),
        steps=outcome.steps, seconds=seconds,
        final_structure=final if finite else None,
        initial_volume=initial_volume,
        final_volume=_finite_or_none(float(final.volume)) if finite else None,
    )
    if result.has_energy and settings.formation_energy:
        try:
            elements = [el.symbol for el in structure.composition.element_composition]
            references = elemental_references(elements, settings, device=device)
            result.formation_energy_per_atom = formation_energy_per_atom(structure, result.energy_per_atom, references)
        except Exception as exc:  # the energy is still worth keeping
            logger.warning("formation-energy proxy unavailable: %s: %s", type(exc).__name__, exc)
    return result


def relax_structure(payload: dict[str, Any]) -> dict[str, Any]:
    """Relax one structure; a picklable entry point for executors. Never raises.

    The CHGNet model is cached per process, so a worker loads it once. Set
    the worker's torch threads before calling (see the module docstring).

    Args:
        payload: ``{"structure": Structure.as_dict() (or CIF text),
            "settings": RelaxSettings fields (optional),
            "device": "cpu" (optional)}``.

    Returns:
        :meth:`RelaxResult.to_dict`; any error (bad payload, missing chgnet,
        CHGNet or ASE exception) is a ``failed`` result with
        ``"<ExceptionType>: <message>"``.
    """
    try:
        raw = payload["structure"]
        structure = Structure.from_str(raw, fmt="cif") if isinstance(raw, str) else Structure.from_dict(raw)
        settings = validate(RelaxSettings, dict(payload.get("settings") or {}), where="relax settings")
        return _relax(structure, settings, payload.get("device", "cpu")).to_dict()
    except Exception as exc:
        return RelaxResult("failed", f"{type(exc).__name__}: {exc}").to_dict()


class CHGNetRelaxer:
    """In-process relaxation oracle: ``Structure -> RelaxResult``.

    Not thread-safe (the cached ASE calculator holds per-call state); use
    :func:`relax_structure` with an executor for parallel work.

    Args:
        settings: Relaxation settings.
        device: Torch device for CHGNet (``"cpu"``, ``"cuda"``).

    Raises:
        MolgenError: chgnet is not installed (with the install hint).
    """

    def __init__(self, settings: RelaxSettings = RelaxSettings(), device: str = "cpu"):
        _chgnet_model_module()  # fail here, with the hint, rather than as a "failed" result per structure
        self.settings = settings
        self.device = device

    def relax(self, structure) -> RelaxResult:
        """Relax one pymatgen ``Structure`` (never raises for model errors)."""
        return _relax(structure, self.settings, self.device)


# --------------------------------------------------------------------------- references

# Elements whose standard state is a gas or molecular solid: a diatomic molecule.
_DIATOMIC = frozenset({"H", "N", "O", "F", "Cl", "Br", "I"})
# Noble gases: an isolated atom (the potential has no dispersion to bind a crystal).
_MONATOMIC = frozenset({"He", "Ne", "Ar", "Kr", "Xe", "Rn"})
_BOX = 12.0  # A; images stay well beyond CHGNet's 6 A graph cutoff
_REFERENCE_FMAX = 0.02  # fixed so that the cache depends on the model only
_REFERENCE_STEPS = 500
_CACHE_FORMAT = 1

_REFERENCES: dict[str, dict[str, float]] = {}  # model -> element -> eV/atom (NaN: failed this process)


def _tabulated_crystal(symbol: str):
    """ASE's crystal of an element's reference state (``ase.build.bulk``), or None where it has none."""
    try:
        return bulk(symbol)
    except (ValueError, KeyError, RuntimeError, NotImplementedError):
        return None


def known_elemental_crystals(elements: Iterable[str]) -> list[Any]:
    """The reference-state crystals ASE tabulates for ``elements`` (fcc Cu,
    bcc Fe, hcp Mg, diamond Si, ...) as pymatgen structures; elements without
    one (molecular, or no one-atom-basis description) are left out. Novelty
    against a binary/ternary training set would otherwise call a sample of a
    known metal new.

    Args:
        elements: Element symbols.

    Returns:
        Structures, at most one per element.
    """
    out = []
    for symbol in sorted(set(elements)):
        if symbol in _DIATOMIC or symbol in _MONATOMIC or symbol not in atomic_numbers:
            continue
        crystal = _tabulated_crystal(symbol)
        if crystal is not None:
            out.append(AseAtomsAdaptor.get_structure(crystal))
    return out


def _reference_candidates(symbol: str) -> list[tuple[str, Any, bool]]:
    """(description, ASE Atoms, relax cell) candidates for an element's
    reference; the lowest relaxed energy per atom wins."""
    number = atomic_numbers[symbol]
    radius = float(covalent_radii[number])
    centre = _BOX / 2
    if symbol in _DIATOMIC:
        bond = 2 * radius
        atoms = Atoms(symbol * 2, positions=[[centre - bond / 2, centre, centre], [centre + bond / 2, centre, centre]],
                      cell=[_BOX] * 3, pbc=True)
        return [(f"{symbol}2 molecule in a {_BOX:g} A box", atoms, False)]
    if symbol in _MONATOMIC:
        return [(f"{symbol} atom in a {_BOX:g} A box", Atoms(symbol, positions=[[centre] * 3], cell=[_BOX] * 3, pbc=True), False)]
    crystal = _tabulated_crystal(symbol)
    if crystal is not None:
        state = reference_states[number] or {}
        return [(f"{state.get('symmetry', 'bulk')} crystal (ase.build.bulk)", crystal, True)]
    # ASE has no one-atom-basis description (B, P, S, Mn, Ga, ...): try
    # simple lattices at the covalent-radius contact distance and keep the lowest.
    guesses = {"fcc": 2 * math.sqrt(2) * radius, "bcc": 4 * radius / math.sqrt(3),
               "sc": 2 * radius, "diamond": 8 * radius / math.sqrt(3)}
    return [(f"{name} crystal (guessed lattice)", bulk(symbol, name, a=a), True) for name, a in guesses.items()]


def _relax_reference(symbol: str, model: str, device: str) -> dict[str, Any] | None:
    """Relax the candidates of ``symbol``; None when none of them is sane."""
    calculator = _calculator(model, device)
    best: dict[str, Any] | None = None
    for description, atoms, relax_cell in _reference_candidates(symbol):
        structure = AseAtomsAdaptor.get_structure(atoms)
        try:
            outcome = _run_relaxation(calculator, structure, steps=_REFERENCE_STEPS, fmax=_REFERENCE_FMAX,
                                      relax_cell=relax_cell, optimizer="FIRE")
        except Exception as exc:
            logger.warning("reference %s of %s failed: %s: %s", description, symbol, type(exc).__name__, exc)
            continue
        per_atom = outcome.energy / len(structure)
        low, high = RelaxSettings().energy_bounds
        if not (math.isfinite(per_atom) and low <= per_atom <= high):
            continue
        if best is None or per_atom < best["energy_per_atom"]:
            best = {"energy_per_atom": per_atom, "structure": description,
                    "steps": outcome.steps, "converged": outcome.converged}
    return best


def references_path(model: str) -> Path:
    """``MOLGEN_HOME/potential/<model>-references.json``."""
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in model)
    return molgen_home() / "potential" / f"{safe}-references.json"


def _read_cache(path: Path, model: str) -> dict[str, dict[str, Any]]:
    """Cached reference entries; a missing, corrupt or foreign file is empty."""
    try:
        data = json.loads(path.read_text())
        entries = data["references"]
        if data.get("format") != _CACHE_FORMAT or data.get("model") != model or not isinstance(entries, dict):
            raise ValueError("format or model mismatch")
        return {symbol: entry for symbol, entry in entries.items()
                if isinstance(entry, dict) and isinstance(entry.get("energy_per_atom"), (int, float))
                and math.isfinite(entry["energy_per_atom"])}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("ignoring unreadable reference cache %s (%s); recomputing", path, exc)
        return {}


def _write_cache(path: Path, model: str, entries: dict[str, dict[str, Any]]) -> None:
    """Merge ``entries`` into the cache file atomically (tmp file + rename);
    re-reading first keeps what concurrent workers added meanwhile."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**_read_cache(path, model), **entries}
        write_json(path, {"format": _CACHE_FORMAT, "model": model, "references": merged})
    except OSError as exc:  # a read-only home only costs recomputation next time
        logger.warning("could not write reference cache %s: %s", path, exc)


def elemental_references(elements: Iterable[str], settings: RelaxSettings = RelaxSettings(),
                         device: str = "cpu") -> dict[str, float]:
    """Energy per atom of each element's reference state under the potential.

    Crystals from ``ase.build.bulk`` (cell relaxed); H, N, O, F, Cl, Br, I as
    diatomic molecules and noble gases as single atoms in a 12 A box; other
    elements without an ASE one-atom-basis crystal as the lowest of fcc, bcc,
    sc and diamond. Only missing elements are computed; results are kept in
    memory and in :func:`references_path` (relaxed with fixed fmax 0.02 eV/A
    and 500 steps, so the cache depends on the model only).

    Args:
        elements: Element symbols.
        settings: Its ``model`` picks the potential.
        device: Torch device.

    Returns:
        ``{symbol: eV/atom}``; an element whose reference could not be
        relaxed is left out.

    Raises:
        MolgenError: chgnet missing (install hint) or an unknown element.
    """
    model = settings.model
    memory = _REFERENCES.setdefault(model, {})
    wanted = sorted(set(elements))
    unknown = [symbol for symbol in wanted if symbol not in atomic_numbers or symbol == "X"]
    if unknown:
        raise MolgenError(f"no elemental reference for {', '.join(unknown)}")
    missing = [symbol for symbol in wanted if symbol not in memory]
    if missing:
        path = references_path(model)
        cached = _read_cache(path, model)
        new: dict[str, dict[str, Any]] = {}
        for symbol in missing:
            if symbol in cached:
                memory[symbol] = float(cached[symbol]["energy_per_atom"])
                continue
            entry = _relax_reference(symbol, model, device)
            memory[symbol] = float(entry["energy_per_atom"]) if entry else math.nan
            if entry:
                new[symbol] = entry
        if new:
            _write_cache(path, model, new)
    return {symbol: memory[symbol] for symbol in wanted if math.isfinite(memory[symbol])}


def formation_energy_per_atom(structure, energy_per_atom: float, references: dict[str, float]) -> float | None:
    """``(E_total - sum_i n_i mu_i) / N`` against elemental references.

    Args:
        structure: pymatgen ``Structure`` (or ``Composition``).
        energy_per_atom: Its total energy per atom (eV/atom).
        references: ``{symbol: mu_i}`` from :func:`elemental_references`.

    Returns:
        eV/atom, or None when a reference is missing or the energy is not finite.
    """
    composition = getattr(structure, "composition", structure).element_composition
    n_atoms = composition.num_atoms
    if n_atoms <= 0 or energy_per_atom is None or not math.isfinite(energy_per_atom):
        return None
    try:
        reference_energy = sum(amount * references[element.symbol] for element, amount in composition.items())
    except KeyError:
        return None
    return (energy_per_atom * n_atoms - reference_energy) / n_atoms
