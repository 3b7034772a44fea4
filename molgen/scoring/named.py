"""Named objectives: simple descriptors, the GuacaMol v2 goal-directed suite
(``guacamol/<task>``) and the PMO oracles that need no downloaded model
(``pmo/<task>``, TDC's names), written as objective specs from their published
definitions (Brown et al. 2019; Gao et al. 2022 / TDC).

Fingerprints follow GuacaMol: ECFP/FCFP/AP are unfolded count fingerprints,
PHCO the Gobbi pharmacophore bits. PMO uses TDC's current isomer score,
which equals GuacaMol's (TDC PR #171); TDC's older, SMILES-regex atom count is
not reproduced.
"""

from __future__ import annotations

from typing import Any

from rdkit import Chem
from rdkit.Chem import Crippen, Descriptors, rdMolDescriptors

from molgen.scoring.objective import OBJECTIVES, Objective

CELECOXIB = "CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F"
TROGLITAZONE = "Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O"
THIOTHIXENE = "CN(C)S(=O)(=O)c1ccc2Sc3ccccc3C(=CCCN4CCN(C)CC4)c2c1"
ARIPIPRAZOLE = "Clc4cccc(N3CCN(CCCCOc2ccc1c(NC(=O)CC1)c2)CC3)c4Cl"
ALBUTEROL = "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1"
MESTRANOL = "COc1ccc2[C@H]3CC[C@@]4(C)[C@@H](CC[C@@]4(O)C#C)[C@@H]3CCc2c1"
MENTHOL = "CC(C)C1CCC(C)CC1O"
CAMPHOR = "CC1(C)C2CCC1(C)C(=O)C2"
TADALAFIL = "O=C1N(CC(N2C1CC3=C(C2C4=CC5=C(OCO5)C=C4)NC6=C3C=CC=C6)=O)C"
SILDENAFIL = "CCCC1=NN(C2=C1N=C(NC2=O)C3=C(C=CC(=C3)S(=O)(=O)N4CCN(CC4)C)OCC)C"
OSIMERTINIB = "COc1cc(N(C)CCN(C)C)c(NC(=O)C=C)cc1Nc2nccc(n2)c3cn(C)c4ccccc34"
FEXOFENADINE = "CC(C)(C(=O)O)c1ccc(cc1)C(O)CCCN2CCC(CC2)C(O)(c3ccccc3)c4ccccc4"
RANOLAZINE = "COc1ccccc1OCC(O)CN2CCN(CC(=O)Nc3c(C)cccc3C)CC2"
PERINDOPRIL = "O=C(OCC)C(NC(C(=O)N1C(C(=O)O)CC2CCCCC12)C)CCC"
AMLODIPINE = r"Clc1ccccc1C2C(=C(/N/C(=C2/C(=O)OCC)COCCN)C)\C(=O)OC"
SITAGLIPTIN = "Fc1cc(c(F)cc1F)CC(N)CC(=O)N3Cc2nnc(n2CC3)C(F)(F)F"
ZALEPLON = "O=C(C)N(CC)C1=CC=CC(C2=CC=NC3=C(C=NN23)C#N)=C1"
VALSARTAN_SMARTS = "CN(C=O)Cc1ccc(c2ccccc2)cc1"
HOP_REFERENCE = "CCCOc1cc2ncnc(Nc3ccc4ncsc4c3)c2cc1S(=O)(=O)C(C)(C)C"
HOP_SCAFFOLD = "[#7]-c1n[c;h1]nc2[c;h1]c(-[#8])[c;h0][c;h1]c12"
HOP_DECORATION = "[#6]-[#6]-[#6]-[#8]-[#6]~[#6]~[#6]~[#6]~[#6]-[#7]-c1ccc2ncsc2c1"


def _sim(name: str, ref: str, fp: str, transform: dict | None = None) -> dict[str, Any]:
    spec = {"type": "similarity", "name": name, "references": [ref], "fingerprint": fp}
    if transform:
        spec["transform"] = transform
    return spec


def _clip(upper: float) -> dict:
    return {"type": "clipped", "upper_x": upper}


def _gauss(kind: str, mu: float, sigma: float) -> dict:
    return {"type": kind, "mu": mu, "sigma": sigma}


def _desc(kind: str, transform: dict, name: str | None = None) -> dict:
    return {"type": kind, "name": name or kind, "transform": transform}


def _isomer(formula: str) -> dict:
    return {"type": "isomer", "name": f"isomer_{formula}", "formula": formula}


def _smarts(name: str, smarts: str, inverse: bool) -> dict:
    return {"type": "smarts", "name": name, "smarts": smarts, "inverse": inverse}


def _sitagliptin_targets() -> tuple[float, float, float]:
    mol = Chem.MolFromSmiles(SITAGLIPTIN)
    return Crippen.MolLogP(mol), rdMolDescriptors.CalcTPSA(mol), Descriptors.BertzCT(mol)


def _tasks() -> dict[str, tuple[str, list[dict]]]:
    """Task name -> (aggregate, component specs), shared by both suites."""
    logp_s, tpsa_s, bertz_s = _sitagliptin_targets()
    return {
        "celecoxib_rediscovery": ("arithmetic", [_sim("similarity", CELECOXIB, "ECFP4")]),
        "troglitazone_rediscovery": ("arithmetic", [_sim("similarity", TROGLITAZONE, "ECFP4")]),
        "thiothixene_rediscovery": ("arithmetic", [_sim("similarity", THIOTHIXENE, "ECFP4")]),
        "aripiprazole_similarity": ("arithmetic", [_sim("similarity", ARIPIPRAZOLE, "ECFP4", _clip(0.75))]),
        "albuterol_similarity": ("arithmetic", [_sim("similarity", ALBUTEROL, "FCFP4", _clip(0.75))]),
        "mestranol_similarity": ("arithmetic", [_sim("similarity", MESTRANOL, "AP", _clip(0.75))]),
        "isomers_c11h24": ("arithmetic", [_isomer("C11H24")]),
        "isomers_c9h10n2o2pf2cl": ("arithmetic", [_isomer("C9H10N2O2PF2Cl")]),
        "isomers_c7h8n2o2": ("arithmetic", [_isomer("C7H8N2O2")]),
        "median1": ("geometric", [_sim("sim_menthol", MENTHOL, "ECFP4"), _sim("sim_camphor", CAMPHOR, "ECFP4")]),
        "median2": ("geometric", [_sim("sim_tadalafil", TADALAFIL, "ECFP6"), _sim("sim_sildenafil", SILDENAFIL, "ECFP6")]),
        "osimertinib_mpo": ("geometric", [
            _sim("sim_fcfp4", OSIMERTINIB, "FCFP4", _clip(0.8)),
            _sim("sim_ecfp6", OSIMERTINIB, "ECFP6", _gauss("min_gaussian", 0.85, 0.1)),
            _desc("tpsa", _gauss("max_gaussian", 100, 10)),
            _desc("logp", _gauss("min_gaussian", 1, 1)),
        ]),
        "fexofenadine_mpo": ("geometric", [
            _sim("similarity", FEXOFENADINE, "AP", _clip(0.8)),
            _desc("tpsa", _gauss("max_gaussian", 90, 10)),
            _desc("logp", _gauss("min_gaussian", 4, 1)),
        ]),
        "ranolazine_mpo": ("geometric", [
            _sim("similarity", RANOLAZINE, "AP", _clip(0.7)),
            _desc("logp", _gauss("max_gaussian", 7, 1)),
            _desc("tpsa", _gauss("max_gaussian", 95, 20)),
            {"type": "atom_count", "name": "fluorine", "element": "F", "transform": _gauss("gaussian", 1, 1)},
        ]),
        "perindopril_mpo": ("geometric", [
            _sim("similarity", PERINDOPRIL, "ECFP4"),
            _desc("aromatic_rings", _gauss("gaussian", 2, 0.5)),
        ]),
        "amlodipine_mpo": ("geometric", [
            _sim("similarity", AMLODIPINE, "ECFP4"),
            _desc("rings", _gauss("gaussian", 3, 0.5)),
        ]),
        "sitagliptin_mpo": ("geometric", [
            _sim("similarity", SITAGLIPTIN, "ECFP4", _gauss("gaussian", 0, 0.1)),
            _desc("logp", _gauss("gaussian", logp_s, 0.2)),
            _desc("tpsa", _gauss("gaussian", tpsa_s, 5)),
            _isomer("C16H15F6N5O"),
        ]),
        "zaleplon_mpo": ("geometric", [_sim("similarity", ZALEPLON, "ECFP4"), _isomer("C19H17N3O2")]),
        "valsartan_smarts": ("geometric", [
            _smarts("valsartan_smarts", VALSARTAN_SMARTS, False),
            _desc("logp", _gauss("gaussian", logp_s, 0.2)),
            _desc("tpsa", _gauss("gaussian", tpsa_s, 5)),
            _desc("bertz", _gauss("gaussian", bertz_s, 30)),
        ]),
        "deco_hop": ("arithmetic", [
            _sim("pharmacophore", HOP_REFERENCE, "PHCO", _clip(0.85)),
            _smarts("no_sulfone", "CS([#6])(=O)=O", True),
            _smarts("no_benzothiazole_amine", "[#7]-c1ccc2ncsc2c1", True),
            _smarts("keep_scaffold", HOP_SCAFFOLD, False),
        ]),
        "scaffold_hop": ("arithmetic", [
            _sim("pharmacophore", HOP_REFERENCE, "PHCO", _clip(0.75)),
            _smarts("keep_decoration", HOP_DECORATION, False),
            _smarts("change_scaffold", HOP_SCAFFOLD, True),
        ]),
        "qed": ("arithmetic", [{"type": "qed"}]),
    }


#: GuacaMol v2 goal-directed suite: task -> top-x counts of its score
#: (mean of the top-x means; Brown et al. 2019).
GUACAMOL_V2 = {
    "celecoxib_rediscovery": (1,), "troglitazone_rediscovery": (1,), "thiothixene_rediscovery": (1,),
    "aripiprazole_similarity": (1, 10, 100), "albuterol_similarity": (1, 10, 100), "mestranol_similarity": (1, 10, 100),
    "isomers_c11h24": (159,), "isomers_c9h10n2o2pf2cl": (250,),
    "median1": (1, 10, 100), "median2": (1, 10, 100), "osimertinib_mpo": (1, 10, 100), "fexofenadine_mpo": (1, 10, 100),
    "ranolazine_mpo": (1, 10, 100), "perindopril_mpo": (1, 10, 100), "amlodipine_mpo": (1, 10, 100),
    "sitagliptin_mpo": (1, 10, 100), "zaleplon_mpo": (1, 10, 100), "valsartan_smarts": (1, 10, 100),
    "deco_hop": (1, 10, 100), "scaffold_hop": (1, 10, 100),
}

def guacamol_task_score(task: str, scores) -> float:
    """GuacaMol's benchmark score of a task from all the scores a method
    produced: the mean over the task's top-x counts of the mean of the x best
    (missing molecules count as 0, failures as 0).

    Raises:
        KeyError: not a GuacaMol v2 task.
    """
    import numpy as np

    ranked = np.sort(np.nan_to_num(np.asarray(list(scores), dtype=float), nan=0.0))[::-1]
    parts = []
    for x in GUACAMOL_V2[task]:
        top = np.zeros(x)
        top[: min(x, len(ranked))] = ranked[:x]
        parts.append(top.mean())
    return float(np.mean(parts))


#: PMO oracles that need no downloaded model (TDC names).
PMO_TASKS = (
    "qed", "celecoxib_rediscovery", "troglitazone_rediscovery", "thiothixene_rediscovery", "albuterol_similarity",
    "mestranol_similarity", "isomers_c7h8n2o2", "isomers_c9h10n2o2pf2cl", "median1", "median2", "osimertinib_mpo",
    "fexofenadine_mpo", "ranolazine_mpo", "perindopril_mpo", "amlodipine_mpo", "sitagliptin_mpo", "zaleplon_mpo",
    "valsartan_smarts", "deco_hop", "scaffold_hop",
)


def _factory(full_name: str, task: str):
    def build() -> Objective:
        aggregate, components = _tasks()[task]
        return Objective.from_spec({"name": full_name, "aggregate": aggregate, "components": components}, where=full_name)

    return build


for _task in GUACAMOL_V2:
    OBJECTIVES.register(f"guacamol/{_task}", _factory(f"guacamol/{_task}", _task))
for _task in PMO_TASKS:
    OBJECTIVES.register(f"pmo/{_task}", _factory(f"pmo/{_task}", _task))
for _name in ("qed", "logp", "sa", "tpsa"):
    OBJECTIVES.register(_name, lambda n=_name: Objective.from_spec({"name": n, "components": [{"type": n}]}, where=n))
