"""Tutorial 11: predictions you can trust, and the ones you cannot. Fit a
descriptor random forest, calibrate its uncertainty on new scaffolds by
scaffold cross-validation, then predict molecules near and far from the
training set: every prediction comes with a calibrated std, a conformal
interval and an applicability-domain verdict (max Tanimoto similarity to
the training set).

Runs without the data mirror: the training data are small NCI molecules
shipped with RDKit, labelled with Crippen logP (a stand-in for a measured
property). Run it as a script (about a minute on a laptop CPU):

    .venv/bin/python tutorials/11_predictor_applicability.py

The same from the command line, on a registered data set:

    molgen fit-predictor --data esol --target logp --model descriptor-forest --cv-folds 5 --out runs/esol-rf
    molgen fit-predictor --data esol --target logp --model auto --out runs/esol-auto   # forest, D-MPNN+descriptors or both, by scaffold CV
    molgen fit-predictor --data esol --target logp --model consensus --cv-folds 5 --out runs/esol-cons  # best on molecules unlike ESOL
    molgen predict runs/esol-rf molecules.smi -o p.csv   # logp_mean, logp_std, logp_lower, logp_upper, in_domain, similarity

and in an objective, refuse to rank molecules on extrapolated guesses:

    [[components]]
    type = "predictor:runs/esol-rf"
    require_in_domain = true        # out-of-domain molecules score NaN ("out of domain")
    [[components]]
    type = "predictor:runs/esol-rf"
    name = "ad"
    statistic = "ad"                # the similarity itself, as an objective column

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_SAMPLES  training molecules (default 400; at least 60 are used)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-11)
"""

import os
from pathlib import Path

import numpy as np
from rdkit import Chem, RDConfig
from rdkit.Chem import Crippen

from molgen.predictors.forest import ForestPredictor
from molgen.predictors.registry import load_predictor
from molgen.predictors.selection import cross_validate, fit_calibrated

n_train = max(int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 400)), 60)
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-11"))

# 1. Data: small NCI molecules and their Crippen logP.
mols = []
for line in open(f"{RDConfig.RDDataDir}/NCI/first_5K.smi").read().splitlines():
    mol = Chem.MolFromSmiles(line.split()[0])
    if mol is not None and 4 <= mol.GetNumHeavyAtoms() <= 25:
        mols.append(mol)
    if len(mols) == n_train:
        break
y = np.array([Crippen.MolLogP(m) for m in mols])

# 2. Scaffold cross-validation: each molecule is predicted by a model that never saw
#    its scaffold. Its RMSE is the honest estimate for new chemistry, and its errors
#    calibrate the uncertainty (ensemble spread + distance to the training set).
factory = lambda seed: ForestPredictor(n_trees=100, seed=seed)  # noqa: E731
cv = cross_validate(factory, mols, y, folds=4, seed=0)
print(f"scaffold-CV RMSE {cv.rmse:.3f} (predicting the mean: {np.std(y):.3f})")
model = fit_calibrated(factory, mols, y, seed=0, coverage=0.9, cv=cv)  # refitted on all molecules
a, b, c, _ = model.variance_[0]  # the fourth, a latent-distance term, is 0 for a forest (no embedding)
print(f"sigma^2 = ({a:.2f} tree std)^2 + ({b:.2f} (1 - similarity))^2 + {c:.2f}^2; "
      f"90 % interval = mean +- {model.quantile_[0]:.2f} sigma; in domain when similarity >= {model.domain.threshold:.2f}")

# 3. Predict molecules near and far from the training set.
queries = {
    "hexanol (small, like the training set)": "CCCCCCO",
    "chlorobenzene": "Clc1ccccc1",
    "perfluorobutanesulfonate (unlike anything seen)": "FC(F)(F)C(F)(F)C(F)(F)C(F)(F)S(=O)(=O)[O-]",
    "a cyclic peptide fragment": "O=C1NC(Cc2ccccc2)C(=O)NC(CC(N)=O)C(=O)NCC(=O)N1",
}
result = model.predict_intervals([Chem.MolFromSmiles(s) for s in queries.values()])
for i, name in enumerate(queries):
    truth = Crippen.MolLogP(Chem.MolFromSmiles(queries[name]))
    print(f"{name}: {result['mean'][i, 0]:.2f} +- {result['std'][i, 0]:.2f} "
          f"[{result['lower'][i, 0]:.2f}, {result['upper'][i, 0]:.2f}] (true {truth:.2f}), "
          f"similarity {result['similarity'][i]:.2f}, {'in' if result['in_domain'][i] else 'OUT OF'} domain")

# 4. Saved as JSON + safetensors (the forest's trees as arrays, the training fingerprints
#    packed to bytes); load_predictor reads it back, as molgen predict and objectives do.
model.save(out / "predictor")
again = load_predictor(out / "predictor")
assert np.allclose(again.predict_intervals([mols[0]])["upper"], model.predict_intervals([mols[0]])["upper"])
print(f"saved -> {out / 'predictor'}")
