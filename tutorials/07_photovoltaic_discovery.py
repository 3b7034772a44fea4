"""Tutorial 7: a photovoltaic materials discovery loop. Look at the
``photovoltaic`` preset, score known perovskites with it, run a few rounds of
generate -> filter -> predict -> relax (CHGNet) -> update, resume the run, and
query the relaxed structures with ASE's database tools.

Needs the potential extra (``pip install 'molgen[potential]'``) and the
Perov-5 data (``MOLGEN_DATA_MIRROR``) for the novelty filter. Run it as a
script (about ten minutes on a laptop CPU with the defaults):

    .venv/bin/python tutorials/07_photovoltaic_discovery.py

The same from the command line:

    molgen discover --preset photovoltaic --rounds 10 --out runs/pv
    molgen discover --resume --rounds 15 --out runs/pv        # after a crash or to extend
    ase db runs/pv/relaxed.db 'formation_energy_per_atom<0' -c +score,energy_per_atom

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_SAMPLES  structures sampled per round (default 256)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-07)
"""
# needs: data mirror (MOLGEN_DATA_MIRROR); the tutorial test skips it without one

import csv
import os
from pathlib import Path

from molgen.core.config import validate
from molgen.domains.crystal import CrystalDomain
from molgen.scoring.objective import Objective
from molgen.workflows.discovery import DiscoverSettings, discover, load_preset

per_round = max(int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 256)), 8)
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-07"))
out.mkdir(parents=True, exist_ok=True)
crystals = CrystalDomain()

# 1. The preset: an objective (cheap filters + learned predictors) and the loop
#    settings. Every threshold is a parameter: dump it, edit it, pass the file.
preset = load_preset("photovoltaic")
print("filters:", [f["type"] for f in preset.objective["filters"]])
print("terms:  ", [c["name"] for c in preset.objective["components"]], f"({preset.objective['aggregate']} mean)")
print("relaxations per round:", preset.discovery.relax.per_round, "| budget:", preset.discovery.relax.budget)

# 2. Score known structures before spending compute: cubic SrTiO3 (a wide-gap
#    insulator), a lead halide perovskite (excluded: Pb) and overlapping atoms.
known = {
    "SrTiO3": "3.9 3.9 3.9\n90 90 90\nO 0.00 0.50 0.50\nO 0.50 0.00 0.50\nO 0.50 0.50 0.00\nTi 0.50 0.50 0.50\nSr 0.00 0.00 0.00",
    "CsPbI3": "6.3 6.3 6.3\n90 90 90\nI 0.00 0.50 0.50\nI 0.50 0.00 0.50\nI 0.50 0.50 0.00\nPb 0.50 0.50 0.50\nCs 0.00 0.00 0.00",
    "overlap": "3.9 3.9 3.9\n90 90 90\nO 0.00 0.50 0.50\nO 0.00 0.50 0.52\nO 0.50 0.50 0.00\nTi 0.50 0.50 0.50\nSr 0.00 0.00 0.00",
}
objective = Objective.from_spec(preset.objective)
table = objective([crystals.parse(text) for text in known.values()])
for i, name in enumerate(known):
    print(f"{name:8s} score {table.total[i]:.3f}  P(non-metal) {table.raw['p_nonmetal'][i]:.2f}  "
          f"rejected by: {table.rejected_by[i]}")

# 3. Run two short rounds with the shipped Perov-5 generator. Relaxations run in
#    this process here ("serial"); the default is a process pool, and
#    executor = "ray" runs them on a Ray cluster.
spec = preset.model_dump(mode="json")
spec["discovery"].update({"rounds": 2, "per_round": per_round})
spec["discovery"]["relax"].update({"per_round": 1, "budget": 3, "executor": "serial", "settings": {"steps": 100}})
# Polymorph search: each round's 2 best formulas come back in the 4 cheapest ion
# substitutions into known Perov-5 structures (method = "generator" samples the
# prior with the atoms fixed instead); they are scored and can be relaxed like
# the proposals, and are listed in polymorphs.csv. neighbours = 1 adds each one's
# nearest new formula by one-element swap, and frontier = "run" picks among the
# best formulas of the whole run: a best-first search in composition space
# (polymorph_formulas.csv lists what each round tried).
spec["discovery"]["polymorphs"] = {"formulas": 2, "samples": 4, "method": "substitution", "templates": ["perov-5-train"],
                                   "neighbours": 1, "frontier": "run"}
settings = validate(DiscoverSettings, {"preset": spec, "generator": "perov5", "seed": 0})
run = out / "run"
result = discover(settings, run, log=print)

# 4. Extend the run: resume continues where it stopped (after a crash, too),
#    without re-scoring or re-relaxing anything.
result = discover(None, run, resume=True, rounds=3, log=print)
print("in-window fraction by round:", result.summary["in_window_fraction_by_round"])

# 5. Per-round funnel, the selected (relaxed) candidates, and the ASE database.
with (run / "rounds.csv").open() as handle:
    for row in csv.DictReader(handle):
        print(f"round {row['round']}: {row['new']} new -> {row['pass_all']} pass filters -> {row['relaxed']} relaxed; "
              f"polymorph search: {row['polymorph_formulas']} formulas + {row['polymorph_neighbours']} neighbours, "
              f"{row['polymorph_new']} new structures")
import ase.db  # noqa: E402  (after the run, to keep the tutorial's steps in order)

for row in ase.db.connect(str(run / "relaxed.db")).select():
    print(f"{row.reduced_formula:10s} E {row.energy_per_atom:.3f} eV/atom  "
          f"E_form proxy {row.get('formation_energy_per_atom', float('nan')):.3f}  status {row.status}")
