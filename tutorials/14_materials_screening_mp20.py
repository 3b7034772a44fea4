"""Tutorial 14: materials screening on MP-20 chemistry. Predict band gaps with
the shipped ``mp20-gap`` model, measure a candidate against a convex hull of
known phases under CHGNet, and run the ``photovoltaic-mp20`` discovery preset.

Needs the potential extra (``pip install 'molgen[potential]'``) and the MP-20
data (``MOLGEN_DATA_MIRROR``). A couple of minutes as a script:

    .venv/bin/python tutorials/14_materials_screening_mp20.py

The same from the command line (the full hull of 7,140 known phases is computed
once, about 3 minutes on 2 cores, then cached under MOLGEN_HOME/hull):

    molgen discover --preset photovoltaic-mp20 --out runs/pv-mp20
    molgen evaluate samples.csv --sun --train mp20-biternary-train --jobs 2 -o sun.json

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_SAMPLES  structures sampled per discovery round (default 256)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-14)
"""
# needs: data mirror (MOLGEN_DATA_MIRROR); the tutorial test skips it without one

import os
from pathlib import Path

import numpy as np

from molgen.core.config import validate
from molgen.datasets import load_texts
from molgen.domains.crystal import CrystalDomain
from molgen.physics.hull import ConvexHull, KnownPhase, static_energies
from molgen.physics.relaxation import RelaxSettings, elemental_references, relax_structure
from molgen.predictors.crystals import GapPredictor
from molgen.pretrained.predictors import predictor_dir
from molgen.workflows.discovery import DiscoverSettings, discover, load_preset

per_round = max(int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 256)), 8)
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-14"))
out.mkdir(parents=True, exist_ok=True)
crystals = CrystalDomain()

# 1. Known structures of a few absorber-relevant formulas, with their PBE gaps.
known = load_texts("mp20-biternary", crystals, targets=("band_gap",), keep_objects=True)
wanted = ("ZnS", "ZnSe", "SnS", "CuO")
picked = [i for i, s in enumerate(known.objects) if s.composition.reduced_formula in wanted]

# 2. The shipped gap model: P(non-metal) from the classifier, the gap of a
#    non-metal from the regressor, and the decision threshold it was tuned to.
gaps = GapPredictor.load(predictor_dir("mp20-gap"))
parts = gaps.predict_parts([known.objects[i] for i in picked])
print(f"mp20-gap decision threshold on P(non-metal): {gaps.decision_threshold:.2f}")
for j, i in enumerate(picked[:8]):
    print(f"{known.objects[i].composition.reduced_formula:6s} true gap {known.targets['band_gap'][i]:.2f} eV | "
          f"P(non-metal) {parts['p_nonmetal'][j]:.2f}, predicted gap {parts['gap_if_nonmetal'][j]:.2f} eV")

# 3. A convex hull of one chemical system (Zn-S) under CHGNet: the known
#    phases' energies at their geometry plus relaxed elemental references.
#    ConvexHull.from_sources(["mp20-biternary"]) does the same for every phase.
zns = [i for i in range(len(known.objects)) if {el.symbol for el in known.objects[i].composition} == {"Zn", "S"}]
energies = static_energies([known.objects[i] for i in zns])
phases = [KnownPhase("mp20-biternary", int(known.lines[i]), "ZnS", known.objects[i].composition, float(e), None)
          for i, e in zip(zns, energies)]
settings = RelaxSettings(steps=100)
hull = ConvexHull(phases, elemental_references(["Zn", "S"], settings))
for phase, distance in hull.known_phase_distances():
    print(f"known {phase.formula} (line {phase.line}): {phase.energy_per_atom:.3f} eV/atom, {distance:.3f} eV/atom above the hull")

# 4. An ion-substitution candidate: a ZnSe structure with Se -> S, relaxed with
#    CHGNet, then its distance to the hull (stable below 0.1 eV/atom).
znse = next(s for s in known.objects if s.composition.reduced_formula == "ZnSe").copy()
znse.replace_species({"Se": "S"})
relaxed = relax_structure({"structure": znse.as_dict(), "settings": settings.model_dump()})
distance = hull.e_above_hull(znse.composition, relaxed["energy_per_atom"])
print(f"ZnSe -> ZnS substitution: {relaxed['status']}, {relaxed['energy_per_atom']:.3f} eV/atom, "
      f"{distance:.3f} eV/atom above the Zn-S hull ({'stable' if distance <= 0.1 else 'unstable'})")

# 5. The photovoltaic-mp20 preset: shipped mp20 generator, mp20-gap, at most
#    three elements, novelty against mp20-biternary-train. Relaxations and the
#    full hull are on by default; here they are off (the run says so up front),
#    so the round is scored by the learned predictors only.
preset = load_preset("photovoltaic-mp20")
print("generator:", preset.generator, "| hull:", preset.discovery.relax.hull,
      "| stable below", preset.discovery.relax.max_e_above_hull, "eV/atom")
spec = preset.model_dump(mode="json")
spec["discovery"].update({"rounds": 1, "per_round": per_round})
spec["discovery"]["relax"].update({"per_round": 0})
result = discover(validate(DiscoverSettings, {"preset": spec, "seed": 0}), out / "run", log=print)
print("stability:", result.summary["stability"])
print("in-window fraction of valid novel candidates:", np.round(result.summary["in_window_fraction_by_round"], 3))
