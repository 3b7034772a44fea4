"""Absorbing-state (masked) discrete diffusion over the tokens view (MDLM /
EvoDiff-OADM family) with a bidirectional transformer denoiser.

Variable length, two strategies (``length_model``):

* ``"padding"`` (default): every sequence is a fixed canvas of ``max_length``
  tokens, ``BOS, tokens..., EOS, PAD, PAD...``, and PAD is an ordinary token
  the model denoises. The length is learned jointly with the content, the
  ELBO is over one well-defined canvas, and sampling needs no separate length
  model; decoding stops at the first EOS (or PAD).
* ``"sampled"`` (EvoDiff's choice): the length is drawn from the training
  data's length histogram (fitted by :meth:`MaskedDiffusion.fit_statistics`),
  EOS and the padding are given, and only the content positions are noised
  and denoised. The denoiser never spends capacity on where a string ends and
  sees the length from the first step; ``log_likelihood`` adds ``log p(length)``
  to the content ELBO, so the bound stays a bound on ``log p(x)``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from molgen.backbones.base import TokenGenerator, TransformerHParams
from molgen.backbones.sampling_options import MaskedSamplingOptions
from molgen.core.errors import MolgenError
from molgen.core.registry import BACKBONES
from molgen.core.seeding import resolve_generator
from molgen.nn.sampling import sample_next
from molgen.nn.transformer import TransformerStack, init_transformer_weights
from molgen.schedulers.masking import MaskingSchedule


class MaskedDiffusionConfig(TransformerHParams):
    """Hyper-parameters of :class:`MaskedDiffusion` (``max_length`` is the
    canvas length, BOS/EOS/padding included)."""

    schedule: Literal["linear", "cosine"] = "linear"
    length_model: Literal["padding", "sampled"] = Field(
        "padding", description="'padding': PAD is a denoised token; 'sampled': lengths drawn from the training histogram")
    sampling_steps: int = Field(64, gt=0, description="default number of denoising steps")
    elbo_samples: int = Field(16, gt=0, description="time points of the log-likelihood (ELBO) estimate")


class MaskedDiffusion(TokenGenerator):
    """Masked discrete diffusion generator.

    ``loss`` is the continuous-time negative ELBO per token; ``log_likelihood``
    is a deterministic ``elbo_samples``-point estimate of the ELBO (a lower
    bound on ``log p``).
    """

    name = "masked-diffusion"
    config_cls = MaskedDiffusionConfig
    sampling_cls = MaskedSamplingOptions

    def __init__(self, domain, config: MaskedDiffusionConfig):
        super().__init__(domain, config)
        c = config
        # Never predicted: BOS, MASK, UNK, and with sampled lengths EOS and PAD too (they are given).
        ends = ("eos", "pad") if c.length_model == "sampled" else ()
        self._bind_vocabulary(banned=("bos", "mask", "unk", *ends))
        if c.length_model == "sampled":  # training lengths (BOS and EOS included), saved with the weights
            self.register_buffer("length_counts", torch.zeros(c.max_length + 1))
        self.schedule = MaskingSchedule(c.schedule, mask_id=self.mask_id)
        self.embed = nn.Embedding(self.vocab_size, c.d_model)
        self.stack = TransformerStack(c.n_layers, c.d_model, c.n_heads, c.d_ff or 4 * c.d_model, c.dropout, causal=False, rotary=True)
        self.head = nn.Linear(c.d_model, self.vocab_size, bias=False)
        self.head.weight = self.embed.weight
        self.apply(init_transformer_weights)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, L, V]`` of the clean tokens given a partly masked canvas."""
        return self.head(self.stack(self.embed(tokens)))

    # -- lengths ------------------------------------------------------------
    def fit_statistics(self, data) -> None:
        """Record the training length histogram (used by ``length_model="sampled"``).

        Args:
            data: Training batches with a ``lengths`` array (BOS and EOS included),
                e.g. :class:`~molgen.train.TokenBatches`.
        """
        if self.config.length_model != "sampled":
            return
        lengths = torch.as_tensor(data.lengths, dtype=torch.long).clamp(max=self.config.max_length)
        self.length_counts.copy_(torch.bincount(lengths, minlength=self.config.max_length + 1).float())

    def _length_log_probs(self) -> torch.Tensor:
        counts = self.length_counts
        if counts.sum() <= 0:
            raise MolgenError(
                "this masked-diffusion model samples lengths from its training data, but no length histogram was "
                "fitted: call fit_statistics(train_batches) before training (molgen train does)")
        # A little mass on every possible length keeps the bound finite for unseen lengths.
        smoothed = counts + 1e-3
        smoothed[:2] = 0.0  # BOS + EOS at least
        return (smoothed / smoothed.sum()).log()

    def _content(self, canvas: torch.Tensor) -> torch.Tensor:
        """Positions that are noised: everything but BOS with padded canvases,
        only the tokens between BOS and EOS with sampled lengths."""
        noised = torch.ones_like(canvas, dtype=torch.bool)
        noised[:, 0] = False  # BOS is always given
        if self.config.length_model == "sampled":
            noised &= (canvas != self.eos_id) & (canvas != self.pad_id)
        return noised

    # -- canvas -----------------------------------------------------------
    def _canvas(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens = batch["tokens"]
        length = self.config.max_length
        if tokens.shape[1] > length:
            raise ValueError(f"sequence of {tokens.shape[1]} tokens longer than the canvas (max_length={length})")
        return F.pad(tokens, (0, length - tokens.shape[1]), value=self.pad_id)

    def _masked_nll(self, canvas: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Weighted cross-entropy summed over masked positions, per sequence."""
        noisy, masked = self.schedule.add_noise(canvas, t, generator, maskable=self._content(canvas))
        logits = self(noisy)
        ce = F.cross_entropy(logits.transpose(1, 2).float(), canvas, reduction="none")
        return self.schedule.weight(t) * (ce * masked).sum(-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Negative ELBO per noised position (canvas positions after BOS, or
        content tokens with sampled lengths), one time per sequence.

        Returns:
            ``{"loss": scalar, "tokens": real tokens predicted (for throughput)}``.
        """
        canvas = self._canvas(batch)
        t = self.schedule.sample_times(canvas.shape[0], device=canvas.device)
        nll = self._masked_nll(canvas, t, None)
        positions = self._content(canvas).sum().clamp(min=1)
        return {"loss": nll.sum() / positions, "tokens": batch["mask"][:, 1:].sum()}

    @torch.no_grad()
    def log_likelihood(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """ELBO of each sequence's canvas, ``[B]``, from ``elbo_samples`` fixed
        time points (midpoint rule) and seeded masks, so it is deterministic
        (with sampled lengths: plus the log-probability of the length)."""
        canvas = self._canvas(batch)
        k = self.config.elbo_samples
        generator = torch.Generator(device=canvas.device).manual_seed(0)
        total = torch.zeros(canvas.shape[0], device=canvas.device)
        for i in range(k):
            t = torch.full((canvas.shape[0],), (i + 0.5) / k, device=canvas.device)
            total += self._masked_nll(canvas, t, generator)
        elbo = -total / k
        if self.config.length_model == "sampled":
            lengths = batch["mask"].sum(-1).clamp(max=self.config.max_length)
            elbo = elbo + self._length_log_probs()[lengths]
        return elbo

    # -- sampling ------------------------------------------------------------
    @torch.inference_mode()
    def sample_ids(
        self,
        n: int,
        *,
        steps: int | None = None,
        batch_size: int = 256,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        max_length: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        order: Literal["random", "confidence", "left-to-right"] = "random",
        use_cache: bool = True,
        confidence_noise: float = 0.0,
        semantic: bool | None = None,
    ) -> list[list[int]]:
        """Draw ``n`` id sequences by denoising from a fully masked canvas.

        Args:
            n: Number of sequences.
            steps: Denoising steps (default ``config.sampling_steps``).
            batch_size: Canvases denoised together.
            temperature, top_k, top_p: Applied to each position's distribution.
            max_length: Ignored beyond the canvas length (kept for API parity).
            generator: Randomness; must live on the model's device.
            seed: Seed when ``generator`` is None.
            use_cache: Ignored (API parity with the autoregressive decoders).
            order: ``"random"``: ancestral sampling of the reverse process
                (each masked position is revealed with the schedule's
                probability); ``"confidence"``: each step reveals the same
                expected number of positions, choosing those whose sampled
                token is most probable, end-of-sequence proposals last
                (MaskGIT-style; not the model's exact distribution, and it
                favours a weak model's most repetitive predictions);
                ``"left-to-right"``: the same number, leftmost first.
            confidence_noise: With ``order="confidence"``: scale of Gumbel
                noise added to the log-probability confidences, annealed
                linearly to 0 with time (MaskGIT's choice temperature);
                trades validity for diversity.
            semantic: Enforce the domain's decoding constraint (SMILES:
                syntax and valence, :class:`~molgen.domains.smiles_syntax.SmilesSyntax`):
                the canvas is filled one position at a time, left to right,
                each token drawn from the denoiser's distribution restricted
                to what the constraint allows (``order`` and ``steps`` do not
                apply). None (default): when the domain has such a rule that
                needs no grammar and ``order`` is not ``"confidence"``.

        Returns:
            Id lists without BOS, cut at the first EOS or PAD.
        """
        was_training = self.training
        self.eval()
        gen = resolve_generator(generator, seed, self.device)
        steps = steps or self.config.sampling_steps
        constraint = self._constraint(semantic, order)
        out: list[list[int]] = []
        for start in range(0, n, batch_size):
            out.extend(self._denoise(min(batch_size, n - start), steps, gen, temperature, top_k, top_p, order,
                                     confidence_noise, constraint))
        self.train(was_training)
        return out

    def _constraint(self, semantic: bool | None, order: str):
        """The domain's decoding constraint when ``semantic`` resolves to True.

        Raises:
            MolgenError: ``semantic=True`` with a confidence order, or on a
                domain whose rule needs its grammar (crystals) or that has none.
        """
        has_grammar = self.domain.token_grammar() is not None
        if semantic is None:
            semantic = not has_grammar and order != "confidence"
            if not semantic or self.domain.decoding_constraint() is None:
                return None
        if not semantic:
            return None
        if order == "confidence":
            raise MolgenError("semantic decoding fills the canvas left to right: it cannot follow order='confidence'")
        if has_grammar:
            raise MolgenError(f"the {self.domain.name!r} decoding rule follows its grammar, which masked diffusion "
                              "does not decode: sample without semantic=True")
        constraint = self.domain.decoding_constraint()
        if constraint is None:
            raise MolgenError(f"domain {self.domain.name!r} has no semantic decoding constraint")
        return constraint

    @torch.inference_mode()
    def sample_ids_under(self, n: int, constraint, *, steps: int | None = None, batch_size: int = 256,
                         temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                         generator: torch.Generator | None = None, seed: int | None = None,
                         grammar=None) -> list[list[int]]:
        """Infill: a constraint that lays out a canvas (``canvas(n, length_probs)
        -> (lengths, fixed ids or -1)``, e.g. a peptide motif) gets its fixed
        positions written before denoising, and the reverse process fills the
        rest in random order, the model's own distribution given them.

        Raises:
            MolgenError: a constraint with no canvas (a left-to-right template),
                a grammar (masked diffusion does not decode one), or a model
                without sampled lengths, or a canvas too long.
        """
        if grammar is not None:
            raise MolgenError("masked diffusion does not decode under a token grammar (e.g. a crystal layout fixed by a "
                              "composition): use an autoregressive or graph-diffusion model")
        if not hasattr(constraint, "canvas"):
            return super().sample_ids_under(n, constraint)
        if self.config.length_model != "sampled":
            raise MolgenError("infilling needs a masked-diffusion model that samples lengths (length_model = 'sampled')")
        was_training = self.training
        self.eval()
        gen = resolve_generator(generator, seed, self.device)
        length_probs = self._length_log_probs().exp().cpu().numpy()[2:]  # index k: k content tokens
        out: list[list[int]] = []
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            lengths, fixed = constraint.canvas(b, length_probs)
            if int(lengths.max()) + 2 > self.config.max_length:
                raise MolgenError(f"a length of {int(lengths.max())} does not fit this model's canvas "
                                  f"({self.config.max_length - 2} tokens)")
            x = torch.full((b, self.config.max_length), self.pad_id, dtype=torch.long, device=self.device)
            x[:, 0] = self.bos_id
            for row, size in enumerate(lengths.tolist()):
                x[row, 1:size + 1] = self.mask_id
                x[row, size + 1] = self.eos_id
                given = fixed[row, :size]
                keep = np.flatnonzero(given >= 0)
                x[row, 1 + keep] = torch.as_tensor(given[keep], device=self.device)
            out.extend(self._denoise(b, steps or self.config.sampling_steps, gen, temperature, top_k, top_p, canvas=x))
        self.train(was_training)
        return out

    def _denoise(self, batch, steps, gen, temperature, top_k, top_p, order="random",
                 confidence_noise=0.0, constraint=None, canvas=None) -> list[list[int]]:
        device = self.device
        length = self.config.max_length
        x = self.schedule.sample_prior((batch, length), device=device) if canvas is None else canvas
        x[:, 0] = self.bos_id
        if canvas is None and self.config.length_model == "sampled":
            sizes = torch.multinomial(self._length_log_probs().exp(), batch, replacement=True, generator=gen)
            position = torch.arange(length, device=device)[None, :]
            x[position == (sizes[:, None] - 1)] = self.eos_id
            x[position >= sizes[:, None]] = self.pad_id
        if constraint is not None:
            return self._decode_constrained(x, gen, temperature, top_k, top_p, constraint)
        times = torch.linspace(1.0, 0.0, steps + 1, device=device)
        # The denoiser is deterministic in its input, so a canvas that did not
        # change since the last step keeps its logits (MDLM's caching): with
        # many steps most rows reveal nothing per step, and the cost saturates
        # near one forward pass per canvas position instead of one per step.
        logits = torch.empty((batch, length, self.vocab_size), device=device)
        stale = torch.ones(batch, dtype=torch.bool, device=device)
        for i in range(steps):
            t, s = times[i], times[i + 1]
            masked = x == self.mask_id
            if not masked.any():
                break
            if stale.any():
                logits[stale] = self(x[stale]).float()
            step_logits = logits[masked]
            step_logits[:, self.banned] = float("-inf")
            proposal = sample_next(step_logits, gen, temperature, top_k, top_p)
            reveal_p = self.schedule.unmask_probability(t, s) if i < steps - 1 else torch.tensor(1.0, device=device)
            if order == "left-to-right":
                reveal = self._leftmost(masked, reveal_p)
            elif order == "confidence":
                ends = (proposal == self.eos_id) | (proposal == self.pad_id)
                gumbel = None
                if confidence_noise > 0:
                    u = torch.rand(proposal.shape, generator=gen, device=device).clamp(1e-10, 1 - 1e-10)
                    gumbel = -torch.log(-torch.log(u)) * (confidence_noise * float(t))
                reveal = self._most_confident(masked, step_logits, proposal, reveal_p, ends, gumbel)
            else:
                reveal = torch.rand(proposal.shape, generator=gen, device=device) < reveal_p
            values = x[masked]
            values[reveal] = proposal[reveal]
            x[masked] = values
            changed = torch.zeros_like(masked)
            changed[masked] = reveal
            stale = changed.any(-1)
        return self._cut(x)

    def _decode_constrained(self, x, gen, temperature, top_k, top_p, constraint) -> list[list[int]]:
        """Fill the canvas one position at a time, left to right, each token
        drawn from the denoiser's distribution at that position restricted to
        what ``constraint`` allows; the canvas's placed end fixes each row's
        length, so the constraint is told to finish exactly there."""
        content = x == self.mask_id
        exact = self.config.length_model == "sampled"
        if exact:
            constraint.reset_exact(content.sum(-1).cpu().numpy())
        else:  # a padded canvas: the denoiser proposes where the molecule ends
            constraint.reset(x.shape[0], x.shape[1] - 1)
        for position in range(1, x.shape[1]):
            live = content[:, position]
            if not live.any():
                continue
            rows = live.nonzero().squeeze(1)
            logits = self(x[rows])[:, position].float()
            logits[:, self.banned] = float("-inf")
            allowed = torch.from_numpy(constraint.allowed(rows.cpu().numpy())).to(logits.device)
            logits = logits.masked_fill(~allowed, float("-inf"))
            # The constraint offers EOS only when nothing else completes the
            # row; the denoiser never predicts EOS inside content, so give it mass.
            if exact:
                logits[:, self.eos_id] = torch.where(allowed[:, self.eos_id], 0.0, float("-inf"))
            tokens = sample_next(logits, gen, temperature, top_k, top_p)
            constraint.advance(rows.cpu().numpy(), tokens.cpu().numpy())
            x[rows, position] = tokens
            ended = rows[tokens == self.eos_id]  # finished early: the rest is padding
            if len(ended):
                content[ended, position + 1:] = False
                x[ended, position + 1:] = self.pad_id
        return self._cut(x)

    def _cut(self, x: torch.Tensor) -> list[list[int]]:
        """Id lists after BOS, each cut at its first EOS or PAD."""
        results = []
        for row in x[:, 1:].tolist():
            seq = []
            for idx in row:
                if idx in (self.eos_id, self.pad_id):
                    break
                seq.append(idx)
            results.append(seq)
        return results

    @staticmethod
    def _leftmost(masked: torch.Tensor, reveal_p: torch.Tensor) -> torch.Tensor:
        """Among each canvas's masked positions, flag the ``round(reveal_p *
        masked)`` (at least one) leftmost ones."""
        n_masked = masked.sum(-1)
        n_reveal = torch.clamp(torch.round(reveal_p * n_masked), min=1).minimum(n_masked)
        rank = masked.long().cumsum(-1) - 1
        return (rank < n_reveal[:, None])[masked]

    @staticmethod
    def _most_confident(masked, step_logits, proposal, reveal_p, last=None, noise=None) -> torch.Tensor:
        """Among each canvas's masked positions, flag the ``round(reveal_p *
        masked)`` (at least one) whose proposed token has the highest probability.

        Proposals flagged in ``last`` (end-of-sequence and padding) rank after
        every other proposal. Padding is the most predictable token of a padded
        canvas, and a revealed PAD makes the position before it a confident PAD
        too: ranked by confidence alone, PAD cascades to the first position and
        every sample comes out empty. Held back, a position that proposes an end
        token stays masked and is proposed again once the content is in place.
        """
        confidence = torch.full(masked.shape, float("-inf"), device=masked.device)
        scores = step_logits.float().log_softmax(-1).gather(1, proposal[:, None]).squeeze(1)
        if noise is not None:
            scores = scores + noise
        if last is not None:
            scores = scores - 1e4 * last.float()  # log-probabilities are > -1e4 in practice
        confidence[masked] = scores
        n_masked = masked.sum(-1)
        n_reveal = torch.clamp(torch.round(reveal_p * n_masked), min=1).minimum(n_masked)
        rank = confidence.argsort(-1, descending=True).argsort(-1)
        return (rank < n_reveal[:, None])[masked]


BACKBONES.register("masked-diffusion", MaskedDiffusion)
