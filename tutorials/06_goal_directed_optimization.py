"""Tutorial 6: goal-directed molecule optimisation. Write an objective, check
it on known molecules, steer the shipped ZINC250k prior toward it with
REINVENT-style reinforcement learning under an oracle budget, extend the run,
and read the candidate store.

Run it as a script (a few minutes on a laptop CPU with the defaults):

    .venv/bin/python tutorials/06_goal_directed_optimization.py

The same from the command line:

    molgen score my_molecules.smi --objective pmo/osimertinib_mpo -o scores.csv
    molgen optimize --prior zinc250k --objective my_objective.toml --budget 2000 --out runs/opt
    molgen optimize --resume --budget 3000 --out runs/opt      # after a crash or to extend
    molgen export runs/opt --top 20 -o best.sdf

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_SAMPLES  oracle budget of the first run (default 1000)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-06)
"""

import os
import sqlite3
from pathlib import Path

from molgen.domains import SmilesDomain
from molgen.scoring import get_objective
from molgen.workflows.optimization import export_top, optimize

budget = max(int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 1000)), 10)
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-06"))
out.mkdir(parents=True, exist_ok=True)
smiles = SmilesDomain()

# 1. An objective in TOML: drug-likeness and similarity to celecoxib (capped at
#    0.6 so the run looks for analogues, not celecoxib itself), PAINS as a hard filter.
objective_file = out / "celecoxib_analogues.toml"
objective_file.write_text("""
name = "celecoxib-analogues"
aggregate = "geometric"

[[components]]
type = "qed"

[[components]]
type = "similarity"
name = "celecoxib_sim"
references = ["CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F"]
fingerprint = "ECFP4"
weight = 2.0
transform = { type = "clipped", upper_x = 0.6 }

[[filters]]
type = "alerts"
catalog = "PAINS"
max = 0
""")
objective = get_objective(objective_file)

# 2. Check it on known molecules before spending a budget on it.
known = {"celecoxib": "CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F", "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
         "not a molecule": "C1CC"}
table = objective([smiles.try_parse(s) for s in known.values()])
for i, name in enumerate(known):
    print(f"{name:15s} total {table.total[i]:.3f}  reason: {table.reasons[i]}")

# 3. Optimise: the agent starts as the shipped prior. Every scored molecule is
#    written to run/candidates.sqlite as soon as it is scored.
run = out / "run"
settings = {"prior": "zinc250k", "objective": str(objective_file), "seed": 0,
            "campaign": {"budget": budget, "batch_size": 64}}
result = optimize(settings, run)
s = result.summary
print(f"{result.calls} calls in {result.steps} steps: top-1 {s['top1']:.3f}, top-10 {s['top10']:.3f}, top-10 AUC {s['auc_top10']:.3f}")

# 4. Extend the budget: --resume continues the same run (after a crash, too).
result = optimize({"campaign": {"budget": budget + budget // 2}}, run, resume=True)
print(f"extended to {result.calls} calls: top-10 {result.summary['top10']:.3f}")

# 5. The store is plain SQLite: query it, or export the best molecules.
with sqlite3.connect(run / "candidates.sqlite") as con:
    for call, text, total in con.execute("SELECT call, text, total FROM candidates ORDER BY total DESC LIMIT 5"):
        print(f"call {call:5d}  {total:.3f}  {text}")
print("wrote", export_top(run, out / "best.sdf", top=20))
