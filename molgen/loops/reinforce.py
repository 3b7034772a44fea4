"""Reinforcement learning with prior regularisation (REINVENT; Olivecrona et
al. 2017, Blaschke et al. 2020).

The agent starts as a copy of the prior and minimises REINVENT's DAP loss
``(log p_prior(x) + sigma * score(x) - log p_agent(x))^2`` over its own
samples and a replay of the best sequences seen so far: the agent moves
toward the prior reweighted by ``exp(sigma * score)`` instead of collapsing
onto the single best sequence.

With ``augmentation_rounds`` > 0 the strategy is Augmented Memory (Guo and
Schwaller 2024): after the usual step, each round takes further DAP steps on
randomized equivalents (e.g. non-canonical SMILES) of the scored batch and of
the whole replay memory. Scores are reused without new oracle calls, which is
what a small oracle budget rewards.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Literal, Sequence

import numpy as np
import torch
from pydantic import Field, model_validator

from molgen.core.config import StrictModel
from molgen.core.device import autocast
from molgen.core.errors import MolgenError, ParseError, UnknownTokenError
from molgen.core.seeding import make_generator
from molgen.core.serialization import flatten_state, unflatten_state
from molgen.core.vocab import pad_batch
from molgen.domains.smiles_template import decoration
from molgen.loops.replay import ReplayBuffer


class ReinforceConfig(StrictModel):
    """Settings of :class:`PriorRegularizedRL`.

    Defaults: learning rate 5e-4 and sigma 60 (mol_opt's first REINVENT
    defaults; a moderate push that keeps the agent near its prior), replay of
    24 of the best 100 drawn uniformly, no likelihood penalty. PMO's final
    tuned REINVENT (mol_opt ``hparams_default.yaml``, the published AUCs) is
    greedier: ``sigma=500``, ``likelihood_penalty=5000``,
    ``replay_weighting="score"``."""

    kind: Literal["reinvent"] = "reinvent"
    sigma: float = Field(60.0, gt=0, le=1e4, description="reward scale in the augmented likelihood (PMO's tuned "
                         "REINVENT: 500; past 1e4 the squared loss leaves float32's range)")
    learning_rate: float = Field(5e-4, gt=0)
    replay_capacity: int = Field(100, ge=0, description="best sequences kept for replay (0: off)")
    replay_batch: int = Field(24, ge=0, description="replayed sequences per update")
    replay_weighting: Literal["uniform", "score"] = Field(
        "uniform", description="draw replayed sequences uniformly or in proportion to their scores (REINVENT 1.0, PMO)")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the agent")
    constrained: bool = Field(
        False, description="sample under the domain's token grammar (crystal text: every proposal parses) and score "
        "agent and prior with the matching renormalised likelihood")
    semantic: bool = Field(
        False, description="with constrained: also enforce the domain's decoding constraint when proposing (crystals: "
        "no atom within 0.5 A of another); the likelihoods stay the grammar-renormalised ones, which the DAP "
        "regression needs only as values for the proposed sequences")
    likelihood_penalty: float = Field(
        0.0, ge=0, description="weight of REINVENT 1.0's regulariser mean(-1 / log p_agent), which pushes against "
        "sequences becoming too likely (mode collapse); PMO's REINVENT uses 5000, 0 turns it off")
    grad_clip: float | None = Field(None, gt=0, description="clip the gradient norm (None: off, as REINVENT)")
    update_batch: int | None = Field(
        None, gt=0, description="split a large proposal into policy steps of this many sequences (each with its own "
        "replay draw); None: one step per proposal, as REINVENT")
    augmentation_rounds: int = Field(
        0, ge=0, description="Augmented Memory: extra policy steps per proposal on randomized equivalents of the "
        "scored batch and of the whole replay memory (0: off, plain REINVENT; Guo and Schwaller use 2)")
    memory_purge: bool = Field(
        True, description="Augmented Memory's selective memory purge: with augmentation on and a diversity filter, "
        "drop from the replay memory every molecule of a scaffold the filter has just penalised, so augmented "
        "rounds stop re-learning a saturated scaffold; no effect without augmentation or without a filter")

    scaffold: str | None = Field(
        None, description="LibInvent-style: propose only decorations of this SMILES scaffold ('*' at each attachment "
        "point); the scaffold's tokens are forced and the agent writes the substituents, learning from their scores")

    condition: dict[str, float] | None = Field(
        None, description="a conditional prior's property targets (e.g. {band_gap = 1.45}): the agent proposes, and "
        "agent and prior are scored, conditioned on them, so the run starts from the prior's conditional "
        "distribution; None: unconditional")

    @model_validator(mode="after")
    def _semantic_needs_grammar(self) -> "ReinforceConfig":
        if self.semantic and not self.constrained:
            raise ValueError("semantic = true needs constrained = true (the constraint reads the grammar's layout)")
        if self.scaffold is not None and self.constrained:
            raise ValueError("scaffold and constrained cannot be combined (a scaffold is a SMILES template)")
        if self.scaffold is not None and self.condition:
            raise ValueError("scaffold and condition cannot be combined")
        return self


class PriorRegularizedRL:
    """Campaign strategy: REINVENT-style policy updates of an agent.

    Args:
        prior: A generator with an exact ``log_likelihood`` (the
            autoregressive backbone); it stays frozen.
        config: Strategy settings.
        seed: Seed of sampling and replay draws.
        precision: Autocast of sampling and of the update's forward passes
            (``auto``: bf16 on CUDA, float32 on CPU; ``bf16``; ``fp32``); the
            backward pass and the optimiser step stay in float32.

    Raises:
        MolgenError: the backbone has no exact likelihood.
    """

    name = "reinvent"
    #: Rewards the update is built for (REINVENT's scores); the campaign clips to it.
    reward_range = (0.0, 1.0)

    def __init__(self, prior, config: ReinforceConfig | None = None, seed: int = 0, precision: str = "auto"):
        if not getattr(prior, "exact_likelihood", False):
            raise MolgenError(
                f"reinforcement learning needs an exact sequence likelihood; the {prior.name!r} backbone gives "
                "a bound (use an autoregressive prior)"
            )
        self.config = config or ReinforceConfig()
        self.prior = prior.eval()
        for p in self.prior.parameters():
            p.requires_grad_(False)
        self.agent = copy.deepcopy(prior)
        for p in self.agent.parameters():
            p.requires_grad_(True)
        self.optimizer = torch.optim.Adam(self.agent.parameters(), lr=self.config.learning_rate)
        self.device = prior.device
        self.autocast = functools.partial(autocast, self.device, precision)
        self.autocast()  # refuse an unknown precision now
        self.sample_generator = make_generator(seed, self.device)
        self.replay_generator = make_generator(seed + 1)
        # Dropout in the policy step draws from torch's global RNG; seeding it per step from this
        # generator makes updates (and so a resumed run) reproducible from the strategy's own state.
        self.update_generator = make_generator(seed + 2)
        self.skipped_updates = 0
        self.last_skip_reason: str | None = None
        self.template = None
        if self.config.scaffold is not None:
            if prior.domain.name != "smiles":
                raise MolgenError(f"a scaffold is a SMILES template; this prior's domain is {prior.domain.name!r}")
            self.template = decoration(self.config.scaffold)
            self.template.constraint(prior.domain.tokenizer.vocab)  # refuses tokens the prior cannot write, now
        self.condition: torch.Tensor | None = None  # [1, k]: the targets every sequence is scored under
        if self.config.condition:
            # condition_rows refuses an unconditional prior or names other than the prior's, now.
            self.condition = prior.condition_rows(1, self.config.condition, self.sample_generator)
            # The policy is the conditional one: no condition dropout in its training steps.
            self.agent.config = self.agent.config.model_copy(update={"condition_dropout": 0.0})
        self.replay = ReplayBuffer(self.config.replay_capacity, self.config.replay_weighting)
        self._last: list[list[int]] = []

    @property
    def domain(self):
        return self.prior.domain

    @property
    def _grammar_option(self) -> dict[str, bool]:
        """``constrained=True`` for sampling and likelihoods when configured;
        nothing otherwise, so backbones without the option still work."""
        return {"constrained": True} if self.config.constrained else {}

    def propose(self, n: int) -> list[str]:
        """Sample ``n`` texts from the agent (duplicate sequences dropped, as
        REINVENT does, so each distinct sequence is learned from once)."""
        # Sample without dropout: the policy being scored is the deterministic network, and a resumed run
        # (whose agent comes back in eval mode) must propose what the uninterrupted run proposed.
        self.agent.eval()
        # Explicit flags where the backbone has them: its sampling default follows the domain (constrained
        # for crystals), while this policy's proposals must match its likelihoods, which follow the config.
        flags: dict[str, Any] = {"condition": dict(self.config.condition)} if self.condition is not None else {}
        if "constrained" in self.agent.sampling_options():
            flags.update(constrained=bool(self.config.constrained), semantic=bool(self.config.semantic))
        if self.template is not None:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.sample_generator, device=self.device))
            constraint = self.template.constraint(self.domain.tokenizer.vocab, seed=seed)
            with self.autocast():
                ids = self.agent.sample_ids_under(n, constraint, batch_size=n, temperature=self.config.temperature,
                                                  generator=self.sample_generator)
        else:
            with self.autocast():
                ids = self.agent.sample_ids(n, batch_size=n, temperature=self.config.temperature,
                                            generator=self.sample_generator, **flags)
        seen: set[tuple[int, ...]] = set()
        self._last = []
        for seq in ids:
            if tuple(seq) not in seen:
                seen.add(tuple(seq))
                self._last.append(list(seq))
        tokenizer = self.domain.tokenizer
        return [tokenizer.decode(seq) for seq in self._last]

    def _sequences(self, ids: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        vocab = self.domain.tokenizer.vocab
        limit = self.agent.config.max_length
        rows = [[vocab.bos_id, *seq, vocab.eos_id] if len(seq) + 2 <= limit else [vocab.bos_id, *seq[: limit - 1]] for seq in ids]
        batch = {k: v.to(self.device) for k, v in pad_batch(rows, vocab.pad_id).items()}
        if self.condition is not None:
            batch["condition"] = self.condition.expand(len(rows), -1)
        return batch

    def update(self, texts: Sequence[str], keys: Sequence[str | None], rewards: Sequence[float]) -> dict[str, float]:
        """DAP policy steps on the last proposal (``texts`` in proposal
        order) plus replayed sequences: one step, or one per ``update_batch``
        sequences.

        Args:
            texts: The texts returned by :meth:`propose`.
            keys: Canonical keys (None for invalid texts).
            rewards: Rewards (NaN counts as 0).

        Returns:
            ``{"loss", "agent_nll", "prior_nll", "replayed"}`` (means over the steps).
        """
        if len(texts) != len(self._last):
            raise MolgenError("update() must follow propose() with its texts")
        size = self.config.update_batch or max(1, len(texts))
        step_seed = int(torch.randint(0, 2**62, (1,), generator=self.update_generator))
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(step_seed)
            stats = [
                self._step(self._last[i:i + size], list(texts[i:i + size]), list(keys[i:i + size]), list(rewards[i:i + size]))
                for i in range(0, max(1, len(texts)), size)
            ]
            if self.config.augmentation_rounds:
                rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=self.update_generator)))
                for _ in range(self.config.augmentation_rounds):
                    self._augmented_step(texts, keys, rewards, rng)
        return {name: float(sum(s[name] for s in stats) / len(stats)) for name in stats[0]}

    def learn(self, texts: Sequence[str], keys: Sequence[str | None], rewards: Sequence[float]) -> dict[str, float]:
        """DAP policy steps on any texts, not only the last proposal: an
        ask/tell campaign learns from measurements of batches proposed days
        earlier, after other proposals.

        Args:
            texts: Texts the agent's vocabulary covers (unknown tokens map to UNK).
            keys: Their canonical keys.
            rewards: Rewards in :attr:`reward_range` (NaN counts as 0).

        Returns:
            As :meth:`update`.
        """
        self._last = [self.domain.tokenizer.encode(t, on_unknown="unk")[1:-1] for t in texts]
        return self.update(texts, keys, rewards)

    def forget(self, keys: set[str]) -> int:
        """Selective memory purge: remove ``keys`` from the replay memory
        when Augmented Memory is on (``augmentation_rounds > 0`` and
        ``memory_purge``); plain REINVENT keeps its memory.

        Args:
            keys: Canonical keys of molecules whose scaffold the diversity
                filter has just penalised.

        Returns:
            How many replay entries were removed.
        """
        if not (self.config.augmentation_rounds and self.config.memory_purge):
            return 0
        return self.replay.remove(keys)

    def _augmented_step(self, texts: Sequence[str], keys: Sequence[str | None], rewards: Sequence[float],
                        rng: np.random.Generator) -> None:
        """One Augmented Memory round: a DAP step on randomized forms of the
        valid texts just scored and of every replay entry (the replay already
        holds this batch's best, so those count twice, as in the method)."""
        pairs = [(t, r) for t, k, r in zip(texts, keys, rewards) if k is not None and r == r]
        pairs += [(t, r) for t, r in self.replay.entries.values()]
        ids, values = [], []
        for text, reward in pairs:
            ids.append(self._augmented_ids(text, rng))
            values.append(reward)
        if ids:
            self._policy_step(self._sequences(ids), torch.as_tensor(values, dtype=torch.float32).to(self.device))

    def _augmented_ids(self, text: str, rng: np.random.Generator) -> list[int]:
        """Token ids of a randomized form of ``text`` without BOS/EOS; the
        original when the randomized form has a token the vocabulary lacks or
        does not fit the model's length."""
        tokenizer = self.domain.tokenizer
        try:
            ids = tokenizer.encode(self.domain.augment(text, rng))[1:-1]
        except (ParseError, UnknownTokenError):  # e.g. a ring-closure label the vocabulary never saw
            ids = None
        if ids is None or len(ids) + 2 > self.agent.config.max_length:
            ids = tokenizer.encode(text, on_unknown="unk")[1:-1]
        return ids

    def _step(self, ids: list[list[int]], texts: list[str], keys: list[str | None], rewards: list[float]) -> dict[str, float]:
        reward = torch.nan_to_num(torch.as_tensor(rewards, dtype=torch.float32), nan=0.0)
        ids = list(ids)
        replay_texts, replay_rewards = self.replay.sample(self.config.replay_batch, self.replay_generator)
        tokenizer = self.domain.tokenizer
        for text in replay_texts:
            ids.append(tokenizer.encode(text, on_unknown="unk")[1:-1])
        reward = torch.cat([reward, torch.as_tensor(replay_rewards, dtype=torch.float32)]).to(self.device)
        loss, agent_ll, prior_ll = self._policy_step(self._sequences(ids), reward)
        self.replay.add(keys, texts, [float(r) for r in reward[: len(texts)].tolist()])
        return {
            "loss": float(loss.detach()),
            "agent_nll": float(-agent_ll[: len(texts)].mean().detach()) if texts else float("nan"),
            "prior_nll": float(-prior_ll[: len(texts)].mean()) if texts else float("nan"),
            "replayed": float(len(replay_texts)),
        }

    def _policy_step(self, batch: dict[str, torch.Tensor], reward: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One optimizer step on the DAP loss (plus the likelihood penalty).

        Returns:
            ``(loss, agent log-likelihoods, prior log-likelihoods)``.
        """
        with torch.no_grad(), self.autocast():
            prior_ll = self.prior.log_likelihood(batch, **self._grammar_option)
        self.agent.train()
        with self.autocast():
            agent_ll = self.agent.log_likelihood(batch, **self._grammar_option)
        target = prior_ll + self.config.sigma * reward
        loss = (target - agent_ll).pow(2).mean()
        if self.config.likelihood_penalty:
            # log p < 0, so -1 / log p grows as a sequence approaches probability 1.
            loss = loss + self.config.likelihood_penalty * (-1.0 / agent_ll.clamp(max=-1e-3)).mean()
        self.optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            self._skip_update(f"non-finite loss {loss.item()}")
            return loss, agent_ll, prior_ll
        loss.backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.agent.parameters(), self.config.grad_clip)
        grads = [p.grad for p in self.agent.parameters() if p.grad is not None]
        if not all(torch.isfinite(g).all() for g in grads):
            self.optimizer.zero_grad(set_to_none=True)
            self._skip_update("non-finite gradient")
            return loss, agent_ll, prior_ll
        self.optimizer.step()
        return loss, agent_ll, prior_ll

    def _skip_update(self, reason: str) -> None:
        """Leave the agent as it is (a NaN step would ruin it and every
        checkpoint after it) and count why."""
        self.skipped_updates += 1
        self.last_skip_reason = reason

    # -- checkpoints --------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(tensors, json)`` that :meth:`load_state` restores exactly."""
        tensors = {f"agent.{k}": v for k, v in self.agent.state_dict().items()}
        opt_tensors, skeleton = flatten_state(self.optimizer.state_dict(), "optimizer")
        tensors.update(opt_tensors)
        tensors["rng.sample"] = self.sample_generator.get_state()
        tensors["rng.replay"] = self.replay_generator.get_state()
        tensors["rng.update"] = self.update_generator.get_state()
        return tensors, {"optimizer": skeleton, "replay": self.replay.state()}

    def load_state(self, tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> None:
        """Restore what :meth:`state` saved."""
        self.agent.load_state_dict({k[len("agent."):]: v for k, v in tensors.items() if k.startswith("agent.")})
        self.optimizer.load_state_dict(unflatten_state(tensors, data["optimizer"]))
        self.sample_generator.set_state(tensors["rng.sample"].cpu())
        self.replay_generator.set_state(tensors["rng.replay"].cpu())
        if "rng.update" in tensors:  # checkpoints written before updates were seeded lack it
            self.update_generator.set_state(tensors["rng.update"].cpu())
        self.replay.load_state(data["replay"])
