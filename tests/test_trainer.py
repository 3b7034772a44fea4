"""train/: schedule, checkpoints, exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SMALL_SMILES
from helpers import fitted_domain

from molgen.backbones import AutoregressiveTransformer
from molgen.core.errors import MolgenError
from molgen.train import TokenBatches, TrainConfig, Trainer


def _setup(out_dir, **train):
    torch.manual_seed(0)
    domain = fitted_domain("smiles")
    model = AutoregressiveTransformer.from_domain(domain, d_model=32, n_layers=1, n_heads=2, max_length=64)
    data = TokenBatches(SMALL_SMILES * 3, domain.tokenizer, batch_size=8, seed=1)
    val = TokenBatches(SMALL_SMILES[:4], domain.tokenizer, batch_size=8)
    config = TrainConfig(**{"progress": False, "warmup_steps": 2, "val_every": 3, "log_every": 1, **train})
    return model, Trainer(model, data, val, config, out_dir)


def _interrupt_at_step_three(trainer) -> None:
    """Run ``trainer`` until a Ctrl-C arrives before step 3 (its checkpoint is written on the way out)."""
    original_rows = trainer.train_data.rows

    def rows_until_three(step):
        if step == 3:
            raise KeyboardInterrupt
        return original_rows(step)

    trainer.train_data.rows = rows_until_three
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()


def test_warmup_then_cosine_schedule(tmp_path):
    _, trainer = _setup(tmp_path, max_steps=10, lr=1e-3, min_lr_ratio=0.1)
    rates = []
    for step in range(11):
        trainer.step = step
        rates.append(trainer.learning_rate())
    assert rates[0] < rates[1] <= 1e-3
    assert all(a >= b for a, b in zip(rates[2:], rates[3:]))
    assert abs(rates[10] - 1e-4) < 1e-9


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    straight, trainer = _setup(tmp_path / "a", max_steps=6)
    trainer.fit()
    # Interrupt the same run after 3 steps (as Ctrl-C would): the checkpoint
    # written on the way out lets the run continue exactly.
    interrupted, trainer = _setup(tmp_path / "b", max_steps=6)
    _interrupt_at_step_three(trainer)
    resumed, trainer = _setup(tmp_path / "b", max_steps=6)
    trainer.fit(resume=True)
    assert trainer.step == 6
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name
    log = (tmp_path / "b" / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and len(log) == 7  # header + one row per step


def test_checkpoint_holds_no_pickles(tmp_path):
    _, trainer = _setup(tmp_path, max_steps=2)
    result = trainer.fit()
    assert result.steps == 2 and result.val_loss is not None
    files = sorted(p.name for p in (tmp_path / "checkpoint").iterdir())
    assert files == ["config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"]
    assert json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())["step"] == 2


def test_batches_are_a_function_of_the_step():
    domain = fitted_domain("smiles")
    a = TokenBatches(SMALL_SMILES * 4, domain.tokenizer, batch_size=5, seed=3)
    b = TokenBatches(SMALL_SMILES * 4, domain.tokenizer, batch_size=5, seed=3)
    assert torch.equal(a.batch(7)["tokens"], b.batch(7)["tokens"])
    seen = torch.cat([a.batch(s)["tokens"][:, 1] for s in range(a.batches_per_epoch)])
    assert len(seen) == a.batches_per_epoch * 5


def test_randomized_smiles_augmentation_changes_batches():
    domain = fitted_domain("smiles")
    plain = TokenBatches(SMALL_SMILES, domain.tokenizer, batch_size=4, seed=0)
    augmented = TokenBatches(SMALL_SMILES, domain.tokenizer, batch_size=4, seed=0, augment=domain.augment)
    changed = any(
        not torch.equal(plain.batch(s)["tokens"], augmented.batch(s)["tokens"]) for s in range(plain.batches_per_epoch)
    )
    assert changed


def test_divergence_stops_with_a_clear_error_and_keeps_checkpoint(tmp_path):
    from molgen.core.errors import MolgenError

    model, trainer = _setup(tmp_path, max_steps=6, checkpoint_every=2)
    original_loss = model.loss

    def loss_nan_from_step_four(batch):
        out = original_loss(batch)
        if trainer.step >= 3:
            out["loss"] = out["loss"] * float("nan")
        return out

    model.loss = loss_nan_from_step_four
    with pytest.raises(MolgenError, match="training diverged at step 4"):
        trainer.fit()
    state = json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 2  # the last good checkpoint survives
    assert all(torch.isfinite(p).all() for p in model.parameters())  # stopped before the bad update


def test_weight_average_is_what_the_run_returns_and_resumes_exactly(tmp_path):
    from molgen.train.ema import WeightAverage

    # By hand: the average of a parameter that goes 0 -> 1 -> 2 follows the warm-up decay.
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    avg = WeightAverage(layer, decay=0.999)
    expected = 0.0
    for step, value in enumerate([1.0, 2.0]):
        with torch.no_grad():
            layer.weight.fill_(value)
        avg.update(layer, step)
        d = min(0.999, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * value
    with avg.applied(layer):
        assert layer.weight.item() == pytest.approx(expected)
    assert layer.weight.item() == 2.0  # restored after the block

    # In a run: the returned model holds the average, not the last step's weights.
    straight, trainer = _setup(tmp_path / "a", max_steps=6, ema_decay=0.9)
    trainer.fit()
    from molgen.core.serialization import load_model_dir, load_tensors

    returned = straight.state_dict()
    _, last_step = load_model_dir(tmp_path / "a" / "checkpoint", torch.device("cpu"))  # raw weights, for resuming
    average = load_tensors(tmp_path / "a" / "checkpoint" / "ema.safetensors", torch.device("cpu"))
    floats = [k for k in last_step if last_step[k].is_floating_point()]
    assert all(torch.equal(returned[k], average[f"ema.{k}"]) for k in floats)
    assert any(not torch.allclose(returned[k], last_step[k]) for k in floats)

    # Interrupted after 3 steps and resumed: same average as the uninterrupted run.
    interrupted, trainer = _setup(tmp_path / "b", max_steps=6, ema_decay=0.9)
    _interrupt_at_step_three(trainer)
    resumed, trainer = _setup(tmp_path / "b", max_steps=6, ema_decay=0.9)
    trainer.fit(resume=True)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_bad_weight_average_settings_are_refused_with_the_key_named():
    from molgen.core.config import validate
    from molgen.core.errors import ConfigError
    from molgen.train.ema import WeightAverage

    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ConfigError, match="ema_decay"):
            validate(TrainConfig, {"ema_decay": bad}, where="train")
    with pytest.raises(ValueError, match="ema decay"):
        WeightAverage(torch.nn.Linear(1, 1), decay=1.0)


def test_keep_best_ends_with_the_lowest_validation_weights_and_resumes(tmp_path):
    import csv

    # A learning rate this high makes the validation loss bounce, so the best
    # evaluation is not the last one.
    model, trainer = _setup(tmp_path / "a", max_steps=12, lr=0.1, min_lr_ratio=1.0, warmup_steps=1, val_every=1, keep_best=True)
    result = trainer.fit()
    rows = [r for r in csv.DictReader(open(tmp_path / "a" / "train_log.csv")) if r["val_loss"]]
    losses = {int(r["step"]): float(r["val_loss"]) for r in rows}
    best_step = min(losses, key=losses.get)
    assert best_step != max(losses), "the run should not improve to the end: the test needs a rising validation loss"
    assert result.best_step == best_step
    assert result.val_loss == pytest.approx(losses[best_step], rel=1e-4)
    with torch.no_grad():  # the model holds the best weights
        assert trainer._validate() == pytest.approx(losses[best_step], rel=1e-4)
    # Interrupted and resumed, the run keeps the best seen before the interruption.
    _, trainer = _setup(tmp_path / "b", max_steps=12, lr=0.1, min_lr_ratio=1.0, warmup_steps=1, val_every=1, keep_best=True)
    _interrupt_at_step_three(trainer)
    _, trainer = _setup(tmp_path / "b", max_steps=12, lr=0.1, min_lr_ratio=1.0, warmup_steps=1, val_every=1, keep_best=True)
    resumed = trainer.fit(resume=True)
    assert resumed.best_step == result.best_step
    assert resumed.val_loss == pytest.approx(result.val_loss, rel=1e-4)
    # Without validation data there is no best to keep: said at once, not ignored.
    with pytest.raises(MolgenError, match="keep_best needs validation data"):
        Trainer(model, trainer.train_data, None, TrainConfig(keep_best=True, max_steps=2), tmp_path / "c")


def test_validation_hook_sees_the_saved_weights_and_leaves_the_run_unchanged(tmp_path):
    plain, trainer = _setup(tmp_path / "plain", max_steps=6, ema_decay=0.9)
    trainer.fit()
    seen = []

    def hook(trainer, val_loss):
        # The averaged weights are in the model during the call.
        averaged = all(torch.equal(p, trainer.ema.shadow[n]) for n, p in trainer.model.named_parameters() if n in trainer.ema.shadow)
        trainer.model.sample_texts(4, seed=0)  # sampling switches to eval mode; the run must not notice
        seen.append((trainer.step, val_loss, averaged))

    hooked, trainer = _setup(tmp_path / "hooked", max_steps=6, ema_decay=0.9)
    trainer.on_validation = hook
    trainer.fit()
    assert [step for step, _, _ in seen] == [3, 6]
    assert all(averaged for _, _, averaged in seen)
    logged = [row for row in (tmp_path / "hooked" / "train_log.csv").read_text().splitlines()[1:] if row.split(",")[4]]
    assert [float(row.split(",")[4]) for row in logged] == pytest.approx([round(v, 5) for _, v, _ in seen])
    for (name, a), (_, b) in zip(plain.state_dict().items(), hooked.state_dict().items()):
        assert torch.equal(a, b), name
