"""AutoDock Vina docking through the ``dockstring`` package (58 prepared
protein targets, ships its Vina binary; optional extra ``molgen[docking]``).

The score is Vina's binding free energy estimate in kcal/mol (lower binds
better; use a reverse sigmoid or a negative linear clamp to turn it into a
desirability). A molecule that cannot be protonated, embedded or docked gets
NaN and the reason; the best pose of each docked molecule is kept as a
molblock in :attr:`DockingScore.poses`.
"""

from __future__ import annotations

from typing import Any

from molgen.core.errors import MolgenError

INSTALL_HINT = "docking needs the optional extra: pip install 'molgen[docking]' (dockstring, openbabel-wheel)"


def _dockstring():
    try:
        import dockstring
    except ImportError as exc:
        raise MolgenError(f"{INSTALL_HINT} ({exc})") from None
    return dockstring


class DockingScore:
    """``Mol -> Vina score`` against one dockstring target.

    Args:
        target: Target name (``DRD2``, ``ESR1``, ...; see dockstring's list).
        num_cpus: Vina threads per molecule (None: all).
        seed: Vina's random seed.

    Raises:
        MolgenError: dockstring missing (with the install hint) or unknown target.
    """

    def __init__(self, target: str, num_cpus: int | None = 1, seed: int = 974528263):
        ds = _dockstring()
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
