"""Lab-in-the-loop campaigns (``molgen campaign``, ``molgen serve``): make
one, and reopen it for each ask or tell, from its run directory alone.

Run directory (besides the engine's candidates.sqlite and checkpoints)::

    campaign.json      the settings (generator, objective, budget, selection)
    objective.toml     the run's own copy of a TOML objective (pinned by sha256)
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import Field

from molgen.core.config import StrictModel, validate
from molgen.core.device import select_device
from molgen.core.errors import MolgenError
from molgen.core.serialization import read_json, write_json
from molgen.loops.asktell import AskTellCampaign, AskTellConfig, GeneratorSampler
from molgen.loops.engine import RunDirectory, claim_new_run, require_resumable
from molgen.loops.reinforce import PriorRegularizedRL, ReinforceConfig
from molgen.workflows.optimization import OBJECTIVE_COPY, objective_digest, resolve_prior

SETTINGS_NAME = "campaign.json"
WHAT = "ask/tell campaign"


class LabCampaignSettings(StrictModel):
    """Everything an ask/tell campaign needs; saved as ``campaign.json``."""

    generator: str = Field("zinc250k", description="shipped model name or a model/run directory")
    objective: str | None = Field(None, description="cheap fidelity and filters: objective name or TOML file (optional)")
    objective_sha256: str | None = None
    device: str = "auto"
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="the generator's sampling and update forward passes: auto (bf16 autocast on CUDA, "
        "float32 on CPU), bf16 or fp32")
    campaign: AskTellConfig
    strategy: ReinforceConfig = Field(default_factory=ReinforceConfig, description="how the generator learns from measurements")


def new_campaign(out_dir: str | Path, settings: dict[str, Any] | LabCampaignSettings) -> LabCampaignSettings:
    """Create an ask/tell campaign in ``out_dir`` (nothing is asked yet).

    Args:
        out_dir: Run directory (new or empty).
        settings: :class:`LabCampaignSettings` or its dict.

    Returns:
        The saved settings.

    Raises:
        ConfigError: bad settings; MolgenError: the directory holds a run, or
            the generator or objective cannot be loaded.
    """
    out_dir = Path(out_dir)
    config = settings if isinstance(settings, LabCampaignSettings) else validate(LabCampaignSettings, settings, where="campaign settings")
    if config.objective is not None:
        from molgen.scoring import get_objective

        get_objective(config.objective)  # refuse a bad objective now, not at the first ask
        config.objective_sha256 = objective_digest(config.objective)
    resolve_prior(config.generator)
    claim_new_run(out_dir, WHAT, SETTINGS_NAME, kind="campaign")
    with RunDirectory(out_dir, WHAT, unit="answers", command="molgen campaign").open(resume=False):
        if config.objective is not None and Path(config.objective).is_file():
            shutil.copyfile(config.objective, out_dir / OBJECTIVE_COPY)
        write_json(out_dir / SETTINGS_NAME, config.model_dump(mode="json"))
    return config


def read_settings(out_dir: str | Path) -> LabCampaignSettings:
    """The settings of the campaign in ``out_dir``.

    Raises:
        MolgenError: no campaign there.
    """
    out_dir = Path(out_dir)
    require_resumable(out_dir, WHAT, SETTINGS_NAME)
    return validate(LabCampaignSettings, read_json(out_dir / SETTINGS_NAME), where=str(out_dir / SETTINGS_NAME))


def _objective(config: LabCampaignSettings, out_dir: Path):
    if config.objective is None:
        return None
    from molgen.scoring import get_objective

    copy = out_dir / OBJECTIVE_COPY
    source = str(copy) if copy.is_file() else config.objective
    if objective_digest(source) != config.objective_sha256:
        raise MolgenError(f"the objective of {out_dir} ({source}) changed since the campaign started (sha256 no longer "
                          f"{config.objective_sha256[:12]}...); it is not run")
    return get_objective(source)


@contextmanager
def open_campaign(out_dir: str | Path, command: str = "molgen campaign") -> Iterator[AskTellCampaign]:
    """Open the campaign in ``out_dir`` for asks and tells, holding its lock.

    Args:
        out_dir: Its run directory.
        command: Names the lock's holder for a second process.

    Yields:
        The :class:`~molgen.loops.asktell.AskTellCampaign`.

    Raises:
        MolgenError: no campaign there, another process holds it, or its
            objective was changed.
    """
    from molgen.backbones.base import load_generator

    out_dir = Path(out_dir)
    config = read_settings(out_dir)
    with RunDirectory(out_dir, WHAT, unit="answers", command=command).open(resume=True, require_run=False) as run:
        objective = _objective(config, out_dir)
        generator = load_generator(resolve_prior(config.generator), select_device(config.device))
        seed = config.campaign.seed
        if config.campaign.learn and getattr(generator, "exact_likelihood", False):
            strategy = PriorRegularizedRL(generator, config.strategy, seed=seed, precision=config.precision)
        else:
            strategy = GeneratorSampler(generator, seed=seed)
        yield AskTellCampaign(run, strategy, config.campaign, objective)


BATCH_COLUMNS = ("id", "batch", "predicted", "uncertainty", "cheap_score", "why")


def write_batch(proposals, path: str | Path, molecules: bool = True) -> Path:
    """Write asked candidates as ``.csv`` (id, smiles or text, batch,
    predicted, uncertainty, cheap_score, why, status, and ``value``/``error``
    columns, empty while pending, for the lab to fill) or ``.sdf`` (the same
    as SD properties).

    Args:
        proposals: :class:`~molgen.loops.asktell.Proposal` objects.
        path: Output file.
        molecules: The texts are SMILES (SDF allowed; the column is ``smiles``).

    Returns:
        The path.

    Raises:
        MolgenError: an unknown suffix, or SDF for objects that are not molecules.
    """
    from molgen.loops.engine import write_records

    path = Path(path)
    suffix = path.suffix.lower()
    text_column = "smiles" if molecules else "text"
    if suffix == ".sdf":
        if not molecules:
            raise MolgenError(f"{path}: SDF is for molecules; write .csv")
        from rdkit import Chem
        from rdkit.Chem import AllChem

        from molgen.core.serialization import atomic_open

        with atomic_open(path) as handle:
            writer = Chem.SDWriter(handle)
            for p in proposals:
                mol = Chem.MolFromSmiles(p.key)
                AllChem.Compute2DCoords(mol)
                mol.SetProp("_Name", p.id)
                for name in BATCH_COLUMNS:
                    value = getattr(p, name)
                    if value is not None:
                        mol.SetProp(name, f"{value:.6g}" if isinstance(value, float) else str(value))
                mol.SetProp("smiles", p.text)
                mol.SetProp("status", p.status)
                if p.value is not None:
                    mol.SetProp("value", f"{p.value:.10g}")
                if p.error is not None:
                    mol.SetProp("error", p.error)
                writer.write(mol)
            writer.close()
        return path
    if suffix != ".csv":
        raise MolgenError(f"{path}: write the batch as .csv or .sdf")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_records(path, [{"id": p.id, text_column: p.text, "batch": p.batch,
                          **{n: "" if getattr(p, n) is None else getattr(p, n) for n in BATCH_COLUMNS[2:]},
                          "status": p.status, "value": "" if p.value is None else p.value, "error": p.error or ""}
                         for p in proposals])
    return path


def read_answers(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a lab's answers: a ``.csv`` with columns ``id`` and ``value``
    and/or ``error`` (other columns ignored; an empty value with an empty
    error is a row not measured yet and skipped), or an ``.sdf`` with those
    SD properties (the record name stands in for a missing ``id``).

    Args:
        path: The file.

    Returns:
        ``[{"row", "id", "value", "error"}]`` as read (``row``: line or record number), to be
        checked by :func:`~molgen.loops.asktell.measurements_from_rows`.

    Raises:
        DataError: missing file, no ``id`` column, an unknown suffix or an unreadable file.
    """
    import csv

    from molgen.core.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".sdf":
        from rdkit import Chem

        rows = []
        for i, mol in enumerate(Chem.SDMolSupplier(str(path), sanitize=False), 1):
            if mol is None:
                raise DataError(f"{path}: record {i} is not a readable SDF record")
            props = mol.GetPropsAsDict(includePrivate=False)
            ident = props.get("id", mol.GetProp("_Name") if mol.HasProp("_Name") else None)
            rows.append({"row": i, "id": None if ident is None else str(ident), "value": props.get("value"), "error": props.get("error")})
    elif suffix in (".csv", ".tsv"):
        try:
            with path.open(newline="") as handle:
                reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
                if reader.fieldnames is None or "id" not in reader.fieldnames:
                    raise DataError(f"{path}: needs an 'id' column (and 'value' and/or 'error'); found {reader.fieldnames}")
                if "value" not in reader.fieldnames and "error" not in reader.fieldnames:
                    raise DataError(f"{path}: needs a 'value' or an 'error' column")
                rows = [{"row": i, "id": r.get("id"), "value": r.get("value"), "error": r.get("error")} for i, r in enumerate(reader, 2)]
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a text CSV file") from None
    else:
        raise DataError(f"{path}: answers are read from .csv, .tsv or .sdf")
    return [r for r in rows if (r["value"] not in (None, "")) or (r["error"] not in (None, ""))]


def write_campaign_report(campaign: AskTellCampaign, output: str | Path) -> Path:
    """Write an HTML report of the campaign (``.html``) or every asked
    candidate with its status and measurement (``.csv``/``.sdf``).

    Args:
        campaign: The open campaign.
        output: The file.

    Returns:
        The path.
    """
    output = Path(output)
    if output.suffix.lower() in (".html", ".htm"):
        from molgen.report import write_report

        return write_report(campaign.run.path, output).path
    return write_batch(campaign.proposals(), output, molecules=campaign.molecules)
