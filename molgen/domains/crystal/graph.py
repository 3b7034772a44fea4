"""The graph view of crystals: atom types, fractional coordinates, lattice
and a periodic radius graph with image offsets (pymatgen's cell-list
neighbour search)."""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Lattice, Structure


#: Smallest cell volume per atom (A^3) a radius graph is built for. Real
#: crystals have > 5 A^3/atom (diamond 5.7); a generated cell that has
#: collapsed toward zero volume would put thousands of images within the
#: cutoff, and pymatgen's neighbour search then runs for minutes or forever.
MIN_VOLUME_PER_ATOM = 1.0


def graphable(structure: Structure) -> bool:
    """Whether :func:`structure_to_graph` accepts the structure: a finite
    lattice with at least :data:`MIN_VOLUME_PER_ATOM` A^3 per atom."""
    volume = structure.lattice.volume
    return len(structure) > 0 and bool(np.isfinite(volume)) and volume / len(structure) >= MIN_VOLUME_PER_ATOM


def require_sound_cell(structure: Structure, what: str) -> None:
    """Refuse a collapsed cell before pymatgen's neighbour search or Niggli
    reduction spends hours on it.

    Args:
        structure: The crystal.
        what: What was about to happen (ends the message, e.g. "no radius graph").

    Raises:
        DataError: the cell is not :func:`graphable`.
    """
    if not graphable(structure):
        from molgen.core.errors import DataError

        raise DataError(f"{structure.composition.reduced_formula}: degenerate cell ({structure.lattice.volume:.3g} A^3 for "
                        f"{len(structure)} atoms, below {MIN_VOLUME_PER_ATOM} A^3 per atom); {what}")


def structure_to_graph(structure: Structure, cutoff: float = 6.0, max_neighbors: int | None = 12):
    """Crystal -> PyG ``Data``.

    Args:
        structure: Ordered structure.
        cutoff: Neighbour radius (A).
        max_neighbors: Keep only the nearest this many neighbours per atom
            (None: all within the cutoff).

    Returns:
        ``Data`` with ``atomic_numbers [N]``, ``frac_coords [N, 3]``,
        ``lattice [1, 3, 3]`` (rows are lattice vectors, A), ``edge_index [2, E]``
        (source = neighbour, target = centre), ``edge_image [E, 3]`` (integer
        cell offset of the neighbour), ``edge_distance [E]`` and ``num_nodes``.
    """
    from torch_geometric.data import Data

    require_sound_cell(structure, "no radius graph")
    centres, neighbours, images, distances = structure.get_neighbor_list(cutoff)
    if max_neighbors is not None and len(centres):
        keep = []
        order = np.lexsort((distances, centres))
        counts: dict[int, int] = {}
        for k in order:
            c = int(centres[k])
            if counts.get(c, 0) < max_neighbors:
                counts[c] = counts.get(c, 0) + 1
                keep.append(k)
        keep = np.sort(np.array(keep, dtype=np.int64))
        centres, neighbours, images, distances = centres[keep], neighbours[keep], images[keep], distances[keep]
    return Data(
        atomic_numbers=torch.tensor([site.specie.Z for site in structure], dtype=torch.long),
        frac_coords=torch.tensor(structure.frac_coords, dtype=torch.float32),
        lattice=torch.tensor(structure.lattice.matrix, dtype=torch.float32).unsqueeze(0),
        edge_index=torch.tensor(np.stack([neighbours, centres]), dtype=torch.long).reshape(2, -1),
        edge_image=torch.tensor(np.asarray(images), dtype=torch.long).reshape(-1, 3),
        edge_distance=torch.tensor(distances, dtype=torch.float32),
        num_nodes=len(structure),
    )


def graph_to_structure(data) -> Structure | None:
    """PyG ``Data`` from :func:`structure_to_graph` (or a model) -> structure,
    or None when types, coordinates or lattice are unusable."""
    try:
        numbers = data.atomic_numbers.detach().cpu().numpy().astype(int)
        frac = data.frac_coords.detach().cpu().double().numpy()
        matrix = data.lattice.detach().cpu().double().numpy().reshape(3, 3)
        if len(numbers) == 0 or np.any(numbers < 1) or np.any(numbers > 118) or not np.all(np.isfinite(frac)):
            return None
        lattice = Lattice(matrix)
        if not np.isfinite(lattice.volume) or lattice.volume <= 0:
            return None
        return Structure(lattice, numbers.tolist(), np.mod(frac, 1.0))
    except (ValueError, TypeError, AttributeError):
        return None
