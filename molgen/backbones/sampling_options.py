"""Sampling options as typed configs, one per backbone, validated once
before any work (:func:`validate_sampling_options`).

Every field is optional: an option left out keeps the backbone's own
default (the VAE decodes greedily, the autoregressive model at temperature
1). A backbone names its config in ``sampling_cls``; a contract test checks
that the config's fields are exactly the keyword options of its sampler.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from molgen.core.config import StrictModel
from molgen.core.errors import MolgenError


class SamplingOptions(StrictModel):
    """Options every sampler takes."""

    batch_size: int | None = Field(None, ge=1, description="samples drawn together")


class TokenSamplingOptions(SamplingOptions):
    """Options of the token samplers."""

    temperature: float | None = Field(None, ge=0, description="softmax temperature (0: greedy)")
    top_k: int | None = Field(None, ge=1, description="keep only the k most likely tokens")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling threshold")
    max_length: int | None = Field(None, ge=3, description="longest sequence (BOS, one token, EOS at least)")


SEMANTIC_HELP = "enforce the domain's decoding rule (crystals: site exclusion; SMILES: syntax and valence)"


class GrammarSamplingOptions(TokenSamplingOptions):
    """Options of left-to-right token decoders, which can follow the domain's grammar."""

    constrained: bool | None = Field(None, description="follow the domain's token grammar")
    semantic: bool | None = Field(None, description=SEMANTIC_HELP)
    field_temperature: dict[str, float] | None = Field(None, description="temperature per grammar field")

    @field_validator("field_temperature")
    @classmethod
    def _non_negative(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for name, t in (value or {}).items():
            if t < 0:
                raise ValueError(f"{name}={t}: must be >= 0")
        return value


class ConditionalSamplingOptions(GrammarSamplingOptions):
    """Options of the autoregressive decoder, which can also be conditioned."""

    condition: dict[str, float | tuple[float, float]] | None = Field(
        None, description="property values (or (low, high) ranges, drawn uniformly per sample) to condition on")
    guidance: float | None = Field(None, ge=0, description="classifier-free guidance weight (0: conditional only)")


class MaskedSamplingOptions(TokenSamplingOptions):
    """Options of the masked-diffusion sampler."""

    steps: int | None = Field(None, ge=1, description="denoising steps")
    order: Literal["random", "confidence", "left-to-right"] | None = Field(None, description="which masked positions each step reveals")
    confidence_noise: float | None = Field(None, ge=0, description="Gumbel noise on confidences (order='confidence')")
    semantic: bool | None = Field(None, description=SEMANTIC_HELP + "; fills the canvas left to right")


class GraphSamplingOptions(SamplingOptions):
    """Options of the graph-diffusion sampler."""

    temperature: float | None = Field(None, ge=0, description="temperature of atom and bond types")
    steps: int | None = Field(None, ge=1, description="denoising steps")
    corrector_steps: int | None = Field(None, ge=0, description="Langevin corrector steps per step (crystal coordinates)")
    condition: dict[str, float] | None = Field(None, description="property values to condition on")
    guidance: float | None = Field(None, description="classifier-free guidance weight")
    node_types: list[list[int]] | None = Field(
        None, description="fixed node-type indices, one list for all samples or one per sample (structure prediction)")


def validate_sampling_options(options: dict[str, Any], schema: type[SamplingOptions], backbone: str = "this") -> dict[str, Any]:
    """Check sampling options against a backbone's typed config.

    Args:
        options: Option name -> value (None values are dropped).
        schema: The backbone's ``sampling_cls``.
        backbone: The backbone's name, for the message.

    Returns:
        The options given, validated, without None values.

    Raises:
        MolgenError: naming the option as its command-line flag, its valid
            range and the value given; or an option the backbone lacks.
    """
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(schema.model_fields))
    if unknown:
        raise MolgenError(f"{', '.join('--' + k.replace('_', '-') for k in unknown)} not supported by the {backbone} backbone "
                          f"(it takes {', '.join(sorted(schema.model_fields))})")
    try:
        checked = schema.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).replace("_", "-")
        where = "".join(f"[{part}]" for part in first["loc"][1:])
        raise MolgenError(f"--{name}{where} {_requirement(first)}, got {first.get('input')!r}") from None
    return checked.model_dump(exclude_none=True)


#: pydantic error types -> what the option must be (bounds from the error's context).
_BOUNDS = {"greater_than_equal": ">= {ge}", "greater_than": "> {gt}", "less_than_equal": "<= {le}", "less_than": "< {lt}"}


def _requirement(error: dict) -> str:
    """``must be >= 0`` and the like from one pydantic error."""
    template = _BOUNDS.get(error["type"])
    if template is not None:
        return "must be " + template.format(**error.get("ctx", {}))
    message = error["msg"].removeprefix("Value error, ").removeprefix("Input ")
    return "must " + message.removeprefix("should ") if message.startswith("should ") else message
