"""Pictures of objects: 2D depictions of molecules (RDKit's SVG drawer) and
ball-and-stick views of crystals (ASE's PNG writer)."""

from __future__ import annotations

import io

from molgen.report.html import Image

MOLECULE_SIZE = (200, 160)


def molecule_svg(smiles: str, size: tuple[int, int] = MOLECULE_SIZE) -> Image | None:
    """A 2D depiction of a SMILES, or None when RDKit cannot read it. No text
    is drawn inside the picture; captions belong to the page (escaped)."""
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    try:
        drawer = rdMolDraw2D.MolDraw2DSVG(*size)
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
        drawer.FinishDrawing()
    except (RuntimeError, ValueError):  # an exotic molecule the drawer rejects: no picture, never a crash
        return None
    return Image.svg(drawer.GetDrawingText(), alt="molecule depiction")


def crystal_png(structure, rotation: str = "10x,20y,0z") -> Image | None:
    """A view of one unit cell (atoms and cell edges) as PNG, or None when ASE
    cannot draw it."""
    import ase.io

    from molgen.domains.crystal import to_ase

    try:
        atoms = to_ase(structure)
        buffer = io.BytesIO()
        ase.io.write(buffer, atoms, format="png", rotation=rotation, radii=0.45, show_unit_cell=2, scale=30)
    except Exception:  # noqa: BLE001  (a degenerate cell must cost a picture, not the report)
        return None
    return Image.png(buffer.getvalue(), alt="crystal structure")
