"""Training data: VisionReasoner/RegionReasoner samples and the synthetic world -> multi-round dialogues -> rows.

Pipeline (every box of a :class:`Dialogue` is integers in the policy's frame, ``fixed:840x840`` by default):

* :mod:`~regionreasoner.trainers.data.sources`: :func:`load_visionreasoner`, :func:`load_regionreasoner`
  (JSON/JSONL samples -> :class:`SourceSample`);
* :mod:`~regionreasoner.trainers.data.decompose`: :func:`decompose` (one round per named object, later rounds citing
  an earlier box with a relation word from geometry), :func:`chain_rounds` (RegionReasoner rounds -> dialogues);
* :mod:`~regionreasoner.trainers.data.synthetic`: :func:`build_synthetic` (world dialogues with ground-truth traces);
* :mod:`~regionreasoner.trainers.data.feeding`: :func:`build_records` in ``official`` or ``multiturn`` mode;
* :mod:`~regionreasoner.trainers.data.dataset`: :class:`TrainingSet` (``to_official_json``, ``to_dataset``,
  ``save``).

:func:`build_training_set` runs it end to end; :func:`synthetic_dataset` gives a Dataset in memory and
:func:`load_saved_dataset` reads back what ``regionreasoner-train data`` saved.  Nothing here imports torch;
``datasets`` is imported only when a Dataset is built or loaded.
"""

from regionreasoner.trainers.data.build import SOURCES, build_dialogues, build_training_set, synthetic_dataset
from regionreasoner.trainers.data.dataset import (
    DATASET_DIR,
    OFFICIAL_JSON,
    SavedSet,
    TrainingSet,
    load_saved_dataset,
    policy_image,
)
from regionreasoner.trainers.data.decompose import RELATION_PRIORITY, chain_rounds, choose_relation, decompose
from regionreasoner.trainers.data.feeding import FEED_MODES, SYSTEM_PROMPT, build_records, records_for, user_text
from regionreasoner.trainers.data.records import (
    Dialogue,
    FeedMode,
    Message,
    Round,
    Source,
    SourceObject,
    SourceSample,
    Target,
    TrainRecord,
)
from regionreasoner.trainers.data.sources import load_regionreasoner, load_visionreasoner, split_problem
from regionreasoner.trainers.data.synthetic import build_synthetic, trace_for

__all__ = [
    "DATASET_DIR",
    "FEED_MODES",
    "OFFICIAL_JSON",
    "RELATION_PRIORITY",
    "SOURCES",
    "SYSTEM_PROMPT",
    "Dialogue",
    "FeedMode",
    "Message",
    "Round",
    "SavedSet",
    "Source",
    "SourceObject",
    "SourceSample",
    "Target",
    "TrainRecord",
    "TrainingSet",
    "build_dialogues",
    "build_records",
    "build_synthetic",
    "build_training_set",
    "chain_rounds",
    "choose_relation",
    "decompose",
    "load_regionreasoner",
    "load_saved_dataset",
    "load_visionreasoner",
    "policy_image",
    "records_for",
    "split_problem",
    "synthetic_dataset",
    "trace_for",
    "user_text",
]
