"""The training core: populations of models trained as one batched computation.

Nothing here touches the store, the CLI or the file system: :func:`train_population` takes a
population's settings and its data and returns records.
"""

from ponder.train.data import PopulationData, prepare_data
from ponder.train.loop import ModelSettings, RunRecord, train_population

__all__ = ["PopulationData", "prepare_data", "ModelSettings", "RunRecord", "train_population"]
