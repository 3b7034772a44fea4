"""AutoDock Vina docking through the ``dockstring`` package (58 prepared
protein targets, ships its Vina binary; optional extra ``molgen[docking]``).

The score is Vina's binding free energy estimate in kcal/mol (lower binds
better; use a reverse sigmoid or a negative linear clamp to turn it into a
desirability). A molecule that cannot be protonated, embedded or docked gets
NaN and the reason; the best pose of each docked molecule is kept as a
molblock in :attr:`DockingScore.poses`.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from molgen.core.errors import MolgenError

INSTALL_HINT = "docking needs the optional extra: pip install 'molgen[docking]' (dockstring, openbabel-wheel)"


def _dockstring():
    try:
        import dockstring
    except ImportError as exc:
        raise MolgenError(f"{INSTALL_HINT} ({exc})") from None
    return dockstring


def _ensure_obabel_on_path() -> None:
    """dockstring runs the ``obabel`` command; openbabel-wheel puts it next to
    the interpreter, which is not on PATH when a virtual environment is used
    without being activated (``.venv/bin/python -m ...``)."""
    if shutil.which("obabel"):
        return
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        if folder and shutil.which("obabel", path=folder):
            os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")
            return
    raise MolgenError(f"docking needs the 'obabel' command, found neither on PATH nor next to {sys.executable}; {INSTALL_HINT}")


class DockingScore:
    """``Mol -> Vina score`` against one dockstring target.

    Args:
        target: Target name (``DRD2``, ``ESR1``, ...; see dockstring's list).
        num_cpus: Vina threads per molecule (None: all).
        seed: Vina's random seed.

    Raises:
        MolgenError: dockstring or obabel missing (with the install hint), or
            unknown target.
    """

    def __init__(self, target: str, num_cpus: int | None = 1, seed: int = 974528263):
        ds = _dockstring()
        _ensure_obabel_on_path()
        try:
            self.target = ds.load_target(target)
        except Exception as exc:  # dockstring raises its own error types for unknown targets
            raise MolgenError(f"docking target {target!r}: {exc}") from None
        self.num_cpus = num_cpus
        self.seed = seed
        self.poses: dict[str, str] = {}

    def __call__(self, mol: Any) -> float:
        from rdkit import Chem

        smiles = Chem.MolToSmiles(mol)
        score, aux = self.target.dock(smiles, num_cpus=self.num_cpus, seed=self.seed)
        if score is None:
            raise MolgenError("docking returned no score")
        ligand = aux.get("ligand") if isinstance(aux, dict) else None
        if ligand is not None:
            self.poses[smiles] = Chem.MolToMolBlock(ligand)
        return float(score)
