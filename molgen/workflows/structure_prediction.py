"""Crystal structure prediction (CSP): structures of a given composition.

The composition fixes what a crystal generator would otherwise choose, the
atoms of the cell, and the generator samples the rest:

* an autoregressive crystal-text model writes the lattice and coordinates
  under the text grammar with its site lines fixed to the composition's
  elements (:meth:`CrystalTextCodec.grammar`) and site exclusion on, so every
  sample parses, has exactly this composition and no two atoms on one spot;
* graph diffusion takes the atoms as fixed node types (inpainted through the
  reverse process) and denoises lattice and fractional coordinates.

Masked diffusion and the VAE refuse (they decode no grammar).
"""

from __future__ import annotations

from typing import Sequence

from pymatgen.core import Structure

from molgen.core.errors import MolgenError
from molgen.domains.crystal.composition import composition_sites


def predict_structures(model, formula: str, n: int, *, formula_units: int = 1, seed: int = 0,
                       temperature: float = 1.0, batch_size: int = 256, steps: int | None = None) -> list[Structure | None]:
    """Sample ``n`` structures of ``formula``.

    Args:
        model: A crystal generator (autoregressive or graph diffusion).
        formula: Composition, e.g. ``"SrTiO3"`` (see :func:`composition_sites`).
        n: Samples.
        formula_units: Copies of the formula in the cell.
        seed: Seed of sampling.
        temperature: Softmax temperature of the text model (graph diffusion:
            not used, its atom types are given).
        batch_size: Samples decoded together.
        steps: Graph diffusion's denoising steps (default the model's).

    Returns:
        ``n`` structures in sampling order; None where a text did not parse
        (its three angles cannot close a cell).

    Raises:
        MolgenError: a model of another domain or a backbone that cannot take
            a composition, a bad composition, or a cell larger than the model.
    """
    if n < 1:
        raise MolgenError(f"-n must be >= 1, got {n}")
    domain = model.domain
    if getattr(domain, "name", None) != "crystal":
        raise MolgenError(f"a composition constrains crystals: this model's domain is {domain.name!r}")
    sites = composition_sites(formula, formula_units)
    if model.view == "graph":
        return _graph_structures(model, sites, n, seed, batch_size, steps)
    if model.name != "autoregressive":
        raise MolgenError(f"the {model.name} backbone cannot fix a composition: use an autoregressive or graph-diffusion "
                          "crystal model")
    longest = _text_tokens(domain.codec, len(sites))
    if longest > model.config.max_length - 2:
        raise MolgenError(f"{len(sites)} sites need at least {longest} tokens, more than this model writes "
                          f"({model.config.max_length - 2})")
    ids = model.sample_ids_under(n, domain.decoding_constraint(), grammar=domain.codec.grammar(sites), seed=seed,
                                 temperature=temperature, batch_size=batch_size)
    return [domain.try_parse(domain.tokenizer.decode(seq)) for seq in ids]


def _graph_structures(model, sites: Sequence[str], n: int, seed: int, batch_size: int, steps: int | None) -> list[Structure | None]:
    types = model.domain.node_types or ()
    missing = sorted(set(sites) - set(types), key=sites.index)
    if missing:
        raise MolgenError(f"this model never saw {', '.join(missing)}: its elements are {' '.join(types)}")
    if len(sites) > model.config.max_nodes:
        raise MolgenError(f"{len(sites)} sites are more than this model's {model.config.max_nodes} nodes")
    index = {symbol: i for i, symbol in enumerate(types)}
    return model.sample(n, seed=seed, batch_size=batch_size, steps=steps, node_types=[[index[s] for s in sites]])


def _text_tokens(codec, n_sites: int) -> int:
    """Tokens of the shortest text of ``n_sites`` sites (one-digit lengths,
    two-digit angles); longer lattices need a few more."""
    length = 1 + (1 + codec.length_decimals if codec.length_decimals else 0)
    angle = 2 + (1 + codec.angle_decimals if codec.angle_decimals else 0)
    site = 2 + 3 * (2 + codec.coord_decimals) + 2
    return 3 * length + 3 + 3 * angle + 3 + n_sites * (site + 1) - 1


def rank_structures(structures: Sequence[Structure | None], rules=None) -> dict[int, int]:
    """Distinct valid structures (StructureMatcher), most often sampled first.

    Args:
        structures: Samples of one composition.
        rules: Validity rules (default: the domain's).

    Returns:
        ``{index of the first sample of each distinct structure: how many
        samples match it}``, in ranking order (count, then first index).
    """
    from molgen.domains.crystal.matching import group_structures
    from molgen.domains.crystal.validity import ValidityRules, structure_is_valid

    rules = rules or ValidityRules()
    valid = [i for i, s in enumerate(structures) if s is not None and structure_is_valid(s, rules)]
    labels = group_structures([structures[i] for i in valid])
    counts: dict[int, int] = {}
    for label in labels:
        counts[valid[label]] = counts.get(valid[label], 0) + 1
    return {i: counts[i] for i in sorted(counts, key=lambda i: (-counts[i], i))}


def summarize_structures(structures: Sequence[Structure | None], rules=None) -> tuple[dict, list[dict]]:
    """Validity and the distinct structures, most often sampled first (a
    sampling-based ranking: a generator that keeps returning one
    arrangement puts its mass there).

    Args:
        structures: From :func:`predict_structures`.
        rules: Validity rules (default: the domain's).

    Returns:
        ``({"samples", "valid", "distinct"}, [{"index", "count", "spacegroup",
        "volume_per_atom"}, ...])``, the list over distinct valid structures
        (``index``: the first sample of each).
    """
    from molgen.report.crystals import space_group

    counts = rank_structures(structures, rules)
    ranked = list(counts)
    valid = sum(counts.values())
    rows = [{"index": i, "count": counts[i], "spacegroup": space_group(structures[i]),
             "volume_per_atom": round(structures[i].volume / len(structures[i]), 3)} for i in ranked]
    return {"samples": len(structures), "valid": valid, "distinct": len(ranked)}, rows


def write_structures(structures: Sequence[Structure | None], path, formula: str):
    """Write samples as ``.csv`` (``index,formula,valid,cif``) or, for a path
    without a suffix, a folder with one CIF per parsed sample.

    Raises:
        MolgenError: another suffix.
    """
    import csv
    from pathlib import Path

    from molgen.domains.crystal.io import to_cif
    from molgen.domains.crystal.validity import ValidityRules, structure_is_valid

    path = Path(path)
    if path.suffix == "":
        path.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(structures):
            if s is not None:
                (path / f"sample_{i:05d}.cif").write_text(to_cif(s))
        return path
    if path.suffix.lower() != ".csv":
        raise MolgenError(f"unknown output suffix {path.suffix!r}: use .csv or a folder (no suffix) of CIF files")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "formula", "valid", "cif"])
        for i, s in enumerate(structures):
            valid = s is not None and structure_is_valid(s, ValidityRules())
            writer.writerow([i, formula, int(valid), to_cif(s) if s is not None else ""])
    return path
