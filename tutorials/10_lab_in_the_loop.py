"""Tutorial 10: a lab in the loop. The optimiser asks for a batch, the lab
measures it (here a simulated assay the optimiser never sees, answering out
of order and with a failed measurement now and then), the answers are told,
the next batch is asked; the campaign is reopened for every round, as a lab's
scripts would, and compared with picking the same number of molecules at
random from the prior.

Run it as a script (a few minutes on a laptop CPU with the defaults):

    .venv/bin/python tutorials/10_lab_in_the_loop.py

The same from the command line (the lab fills `value`, or `error`, in the CSV):

    molgen campaign new --generator zinc250k --objective cheap.toml --budget 240 --out runs/lab
    molgen campaign ask runs/lab -n 24 -o batch.csv
    molgen campaign tell runs/lab batch.csv
    molgen campaign status runs/lab
    molgen campaign report runs/lab -o report.html

and over HTTP (pip install 'molgen[serve]'):

    MOLGEN_SERVE_TOKEN=... molgen serve runs/lab --port 8000
    curl -H "Authorization: Bearer $MOLGEN_SERVE_TOKEN" -X POST localhost:8000/ask -d '{"n": 24}' -H 'content-type: application/json'
    curl -H "Authorization: Bearer $MOLGEN_SERVE_TOKEN" -X POST localhost:8000/tell \
         -d '{"results": [{"id": "b0001-001", "value": 0.42}, {"id": "b0001-002", "error": "precipitated"}]}' -H 'content-type: application/json'

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_STEPS    rounds (default 6)
    MOLGEN_TUTORIAL_SAMPLES  molecules per batch (default 24)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-10)
"""

import os
import shutil
from pathlib import Path

import numpy as np
import torch

from molgen.backbones.base import load_generator
from molgen.pretrained import resolve_model_path
from molgen.scoring import get_objective
from molgen.workflows.lab import new_campaign, open_campaign, write_campaign_report

rounds = max(int(os.environ.get("MOLGEN_TUTORIAL_STEPS", 6)), 2)
batch_size = max(int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 24)), 4)
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-10"))
out.mkdir(parents=True, exist_ok=True)

# 1. The "lab": an assay the optimiser never sees. Here PMO's sitagliptin MPO
#    stands in for a measurement whose good values are rare among the prior's
#    molecules, as actives are; in real use this is a robot, an assay or a chemist.
assay = get_objective("pmo/sitagliptin_mpo")
generator = load_generator(resolve_model_path("zinc250k"))
domain = generator.domain


def measure(smiles: list[str]) -> list[float]:
    return [float(v) for v in assay([domain.parse(s) for s in smiles]).total]


# 2. What the campaign may compute cheaply before asking the lab: drug-likeness
#    as a pre-screen score, and a molecular-weight window as a hard filter.
cheap = out / "cheap.toml"
cheap.write_text("""
name = "cheap-prescreen"
[[components]]
type = "qed"
[[filters]]
type = "molecular_weight"
min = 200
max = 550
""")

# 3. A campaign: the shipped ZINC250k prior proposes, a Tanimoto GP fitted on
#    the measurements ranks, a similarity cap keeps each batch diverse.
campaign_dir = out / "campaign"
shutil.rmtree(campaign_dir, ignore_errors=True)
new_campaign(campaign_dir, {"generator": "zinc250k", "objective": str(cheap),
                            "campaign": {"budget": rounds * batch_size, "batch_size": batch_size,
                                         "pool_size": 40 * batch_size, "prescreen_fraction": 0.5, "seed": 0}})
rng = np.random.default_rng(0)
for r in range(rounds):
    with open_campaign(campaign_dir) as campaign:
        batch = campaign.ask()
        values = measure([p.key for p in batch])
        answers = [{"id": p.id, "value": v} for p, v in zip(batch, values)]
        answers[-1] = {"id": batch[-1].id, "error": "sample degraded"}  # labs fail sometimes: say why
        order = rng.permutation(len(answers))  # and answer in any order, in parts
        campaign.tell([answers[i] for i in order[: len(order) // 2]])
        campaign.tell([answers[i] for i in order[len(order) // 2:]])
        status = campaign.status()
        print(f"round {r + 1}: best measured {status['best']['value']:.3f}, top-10 mean {status['top10_mean']:.3f} "
              f"({status['measured']} measured, {status['failed']} failed); first pick: {batch[0].why[:90]}...")

# 4. The baseline: the same number of measurements picked at random from the prior.
random_smiles, seen = [], set()
g = torch.Generator().manual_seed(0)
while len(random_smiles) < status["measured"]:
    for text in generator.sample_texts(batch_size * 2, generator=g):
        obj = domain.try_parse(text)
        if obj is not None and domain.key(obj) not in seen and len(random_smiles) < status["measured"]:
            seen.add(domain.key(obj))
            random_smiles.append(domain.key(obj))
random_values = np.sort(measure(random_smiles))[::-1]
print(f"random from the prior ({len(random_smiles)} measured): best {random_values[0]:.3f}, top-10 mean {random_values[:10].mean():.3f}")

# 5. Reports: every asked candidate with its measurement, and an HTML page.
with open_campaign(campaign_dir) as campaign:
    print("wrote", write_campaign_report(campaign, out / "candidates.csv"), "and",
          write_campaign_report(campaign, out / "campaign.html"))
