"""Training: resumable batching and the Trainer."""

from molgen.train.data import GraphBatches, SeededBatches, TokenBatches
from molgen.train.trainer import TrainConfig, Trainer, TrainResult

__all__ = ["GraphBatches", "SeededBatches", "TokenBatches", "TrainConfig", "TrainResult", "Trainer"]
