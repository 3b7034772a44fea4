"""Measure every shipped model and write its ``card.json``.

For each model directory under ``molgen/pretrained/data/`` (or those named by
``--models``) the script draws ``--n`` samples (seed ``--seed``) with the
model's default sampling options (:data:`SAMPLING`), scores them with the
project's metric code for the model's domain and writes
``molgen/pretrained/data/<name>/card.json``:

* molecules (SMILES and molecular graphs): :func:`molgen.metrics.evaluate_molecules`
  (the code behind ``molgen evaluate``): ``valid``, ``unique`` (unique valid /
  valid), ``novelty`` (unique valid not in the training data set / unique
  valid), ``FCD``, ``SNN``, ``Frag``, ``Scaf`` against a held-out reference,
  ``IntDiv``; graph models also ``valid_connected`` (the whole graph is one
  valid molecule; ``valid`` takes the largest fragment, as DiGress does);
* crystals: :func:`molgen.metrics.crystals.evaluate_crystals` (the CDVAE set of
  ``molgen evaluate`` on crystals) against the data set's test split;
* peptides: :func:`molgen.metrics.peptides.evaluate_peptides` (incl. the
  shipped classifier's predicted-AMP fraction) against the test split.

The reference of a model trained on ``X-train`` is ``X-test``; a model trained
on a data set without a test split (``zinc250k``) is compared with the
validation part its training run held out (same seed and size, recovered from
its ``config.json``). Novelty is always against the whole training data set.
The full reports go to ``benchmarks/results/shipped_<name>.json``.

    MOLGEN_DATA_MIRROR=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/measure_shipped_models.py
    MOLGEN_DATA_MIRROR=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/measure_shipped_models.py --models amp
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from molgen.backbones.base import Generator
from molgen.core.errors import MolgenError
from molgen.core.serialization import read_json, write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent / "molgen" / "pretrained" / "data"
RESULTS = HERE / "results"

#: Default sampling options of each shipped model (stored in its card).
SAMPLING: dict[str, dict] = {
    "perov5": {"constrained": True, "semantic": True},  # token grammar + no atom closer than the validity distance
    "mp20": {"constrained": True, "semantic": True},
}

#: One-line description of each shipped model.
DESCRIPTIONS: dict[str, str] = {
    "zinc250k": "autoregressive SMILES transformer trained on ZINC250k (PMO's prior data); the default prior of molgen optimize",
    "perov5": "autoregressive crystal-text transformer trained on the Perov-5 training split; the default generator of the photovoltaic preset",
    "amp": "autoregressive peptide transformer trained on the antimicrobial peptides of the AMP train split",
    "mp20": "autoregressive crystal-text transformer trained on mp20-biternary-train (band-gap conditional, classifier-free); "
            "the generator of the photovoltaic-mp20 presets",
    "qm9": "DiGress-style graph diffusion model of QM9 molecular graphs (heavy atoms only) trained on the QM9 train split",
}

MOLECULE_METRICS = {"FCD/Test": "FCD", "SNN/Test": "SNN", "Frag/Test": "Frag", "Scaf/Test": "Scaf", "IntDiv": "IntDiv"}


def machine() -> str:
    """CPU model, core count and torch version of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def registered(name: str) -> bool:
    """Whether ``name`` is a readable data set here."""
    from molgen.datasets.loading import resolve_source

    try:
        resolve_source(name)
    except MolgenError:
        return False
    return True


def records(source: str) -> list[str]:
    """SMILES of a data set (its registered split only), in file order.

    ``load_texts`` applies a named split (``qm9-test`` is a tenth of the QM9
    file); ``molgen.workflows.evaluation.load_optional_set`` reads the whole
    file behind a split name, so it is not used here.
    """
    from molgen.datasets import load_texts
    from molgen.domains import SmilesDomain

    return load_texts(source, SmilesDomain(), on_invalid="skip").texts


def reference_for(data: dict, training: list[str], load, override: str | None = None) -> tuple[str, list[str]]:
    """The held-out reference of a model trained on ``data["source"]``.

    Args:
        data: ``extra.data`` of the model's ``config.json``.
        training: Texts of that data set, in file order.
        load: ``load(name) -> texts`` of a registered data set.
        override: Data set to use instead (e.g. a validation split, to choose
            between trained candidates without looking at the test split).

    Returns:
        ``(description, texts)``: the ``-test`` split when one is registered,
        else the validation part the training run held out.

    Raises:
        MolgenError: neither can be recovered.
    """
    source = data["source"]
    if override:
        return override, load(override)
    if source.endswith("-train") and registered(source[: -len("-train")] + "-test"):
        name = source[: -len("-train")] + "-test"
        return name, load(name)
    # split_train_val of molgen.workflows.training, on a data set read without skips or a subset
    if data.get("n_skipped_invalid") or data.get("n_loaded") != len(training):
        raise MolgenError(f"cannot recover the validation split of {source}: {data.get('n_loaded')} entries were "
                          f"trained on, the data set has {len(training)}")
    held = np.sort(np.random.default_rng(data["seed"]).permutation(len(training))[: data["n_val"]])
    return f"{source}, the {len(held):,} entries held out for validation in training (seed {data['seed']})", [training[i] for i in held]


def measure_molecules(model: Generator, data: dict, n: int, seed: int, sampling: dict, reference: str | None) -> tuple[dict, dict, str]:
    """Sample and score a SMILES or molecular-graph model."""
    from molgen.domains.molgraph import MolGraphDomain
    from molgen.metrics import evaluate_molecules

    domain = model.domain
    extra: dict[str, float] = {}
    if isinstance(domain, MolGraphDomain):
        # Objects are the largest valid fragment (DiGress's validity); a strict
        # copy of the domain tells whether the whole graph was one molecule.
        strict = MolGraphDomain.from_config({**domain.to_config(), "fragments": "reject"})
        texts, connected = [], 0
        for g in model.sample_dense(n, seed=seed, **sampling):
            mol = domain.from_dense(g["node_type"], g["adjacency"])
            ok = mol is not None and domain.is_valid(mol)
            texts.append(domain.format(mol) if ok else "")
            connected += ok and strict.from_dense(g["node_type"], g["adjacency"]) is not None
        extra["valid_connected"] = connected / n
    else:
        texts = model.sample_texts(n, seed=seed, **sampling)
    training = records(data["source"])
    reference_name, reference = reference_for(data, training, records, reference)
    report = evaluate_molecules(texts, reference, training, metrics=["valid", *MOLECULE_METRICS, "Novelty"], k=(),
                                n_jobs=1, cache_root="default")
    meta = report.metadata
    quality = {"valid": report.values["valid"], **extra,
               "unique": meta["n_unique"] / meta["n_valid"] if meta["n_valid"] else None,
               "novelty": report.values["Novelty"]}
    quality.update({short: report.values[name] for name, short in MOLECULE_METRICS.items()})
    return quality, report.to_dict(), reference_name


def measure_crystals(model: Generator, data: dict, n: int, seed: int, sampling: dict, reference: str | None) -> tuple[dict, dict, str]:
    """Sample and score a crystal model (CDVAE metrics)."""
    from molgen.datasets import load_texts
    from molgen.domains.crystal import CrystalDomain
    from molgen.metrics.crystals import CrystalEvalOptions, evaluate_crystals, preset_for

    texts = model.sample_texts(n, seed=seed, **sampling)

    def load(source: str) -> list[str]:  # as molgen.workflows.crystal_evaluation reads named sets
        return load_texts(source, CrystalDomain(), on_invalid="skip", canonicalize=True).texts

    training = load(data["source"])
    reference_name, reference = reference_for(data, training, load, reference)
    report = evaluate_crystals(texts, reference, training,
                               options=CrystalEvalOptions(cutoffs=preset_for(reference_name), n_samples=1000, seed=seed),
                               n_jobs=1, cache_root="default")
    return dict(report.values), report.to_dict(), reference_name


def measure_peptides(model: Generator, data: dict, n: int, seed: int, sampling: dict, reference: str | None) -> tuple[dict, dict, str]:
    """Sample and score a peptide model (incl. the shipped AMP classifier)."""
    from molgen.datasets import load_texts
    from molgen.metrics.peptides import evaluate_peptides

    texts = model.sample_texts(n, seed=seed, **sampling)
    def load(source: str) -> list[str]:  # as molgen.workflows.peptide_evaluation reads named sets
        return load_texts(source, model.domain, on_invalid="skip").texts

    training = load(data["source"])
    reference_name, reference = reference_for(data, training, load, reference)
    report = evaluate_peptides(texts, reference, training, domain=model.domain, seed=seed)
    return dict(report.values), report.to_dict(), reference_name


MEASURES = {"smiles": measure_molecules, "molgraph": measure_molecules, "selfies": measure_molecules,
            "crystal": measure_crystals, "protein": measure_peptides}


def measure(model_dir: Path, n: int, seed: int, threads: int, command: str, reference: str | None = None) -> tuple[dict, dict]:
    """Sample, score and build the card of one model directory.

    Args:
        model_dir: The model (``config.json`` + ``model.safetensors``).
        n: Samples.
        seed: Sampling seed (also of the metrics' subsamples).
        threads: Torch threads used (recorded).
        command: Command line recorded in the card.
        reference: Reference data set instead of the default held-out one.

    Returns:
        ``(card, full report)``.
    """
    name = model_dir.name
    config = read_json(model_dir / "config.json")
    data = config["extra"]["data"]
    model = Generator.from_pretrained(model_dir)
    domain_name = config["domain"]["name"]
    if domain_name not in MEASURES:
        raise MolgenError(f"{name}: no quality measure for domain {domain_name!r}")
    sampling = SAMPLING.get(name, {})
    unknown = set(sampling) - model.sampling_options()
    if unknown:
        raise MolgenError(f"{name}: the sampler takes no option(s) {', '.join(sorted(unknown))}")
    began = time.perf_counter()
    quality, report, reference = MEASURES[domain_name](model, data, n, seed, sampling, reference)
    seconds = time.perf_counter() - began
    card = {
        "name": name,
        "domain": domain_name,
        "backbone": config["backbone"],
        "data": data["source"],
        "parameters": model.num_parameters(),
        "description": DESCRIPTIONS.get(name, f"{config['backbone']} model of {domain_name} trained on {data['source']}"),
        "sampling": sampling,
        "quality": {k: round(float(v), 4) for k, v in quality.items() if v is not None},
        "measured": {"date": datetime.date.today().isoformat(), "machine": machine(), "n_samples": n, "seed": seed,
                     "threads": threads, "command": command, "reference": reference,
                     "novelty_against": data["source"], "seconds": round(seconds, 1)},
    }
    return card, {"card": card, "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None, help="comma-separated names (default: every directory under --root)")
    parser.add_argument("--root", default=str(ROOT), help="folder of shipped model directories")
    parser.add_argument("--n", type=int, default=1000, help="samples per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--reference", default=None,
                        help="score against this data set instead of the held-out default (e.g. a validation split, to choose "
                        "between candidates); use with --no-write")
    parser.add_argument("--no-write", action="store_true", help="print the cards; write nothing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    names = args.models.split(",") if args.models else sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())
    command = (f"MOLGEN_DATA_MIRROR=../shared/data OMP_NUM_THREADS={args.threads} .venv/bin/python "
               f"benchmarks/measure_shipped_models.py --models {','.join(names)} --n {args.n} --seed {args.seed} "
               f"--threads {args.threads}")
    for name in names:
        card, full = measure(root / name, args.n, args.seed, args.threads, command, args.reference)
        print(f"{name}: {card['quality']} ({card['measured']['seconds']} s)", flush=True)
        if not args.no_write:
            write_json(root / name / "card.json", card)
            (root / name / "card.json").chmod(0o644)  # package data, readable by all
            RESULTS.mkdir(exist_ok=True)
            write_json(RESULTS / f"shipped_{name}.json", full)


if __name__ == "__main__":
    main()
