"""Training: resumable batching and the Trainer."""

from molgen.train.data import TokenBatches
from molgen.train.trainer import TrainConfig, Trainer, TrainResult

__all__ = ["TokenBatches", "TrainConfig", "TrainResult", "Trainer"]
