"""The settings of a run: defaults for a new one, the stored ones for a resume, differences.

Training settings are validated here (by `TrainConfig`), before anything is written.
"""

import dataclasses
import json

from ..targets import Target
from ..training import TrainConfig
from ._folder import jsonable

TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def settings_for(target: Target, target_spec: dict, explicit: dict) -> dict:
    """Settings of a new run: the given ones, defaults for the rest (validated)."""
    train = {k: explicit[k] for k in TRAIN_FIELDS if explicit.get(k) is not None}
    neurons = explicit.get("neurons")
    settings = {
        "target": target_spec,
        "neurons": (target.paper_neurons or 64) if neurons is None else neurons,
        "seed": 0, "tau": 1.0, "private_noise": 0.0,
        "train": TrainConfig(**train).to_dict(),  # validates with specific messages
    }  # fmt: skip
    settings.update({k: explicit[k] for k in ("seed", "tau", "private_noise")
                     if explicit.get(k) is not None})  # fmt: skip
    return jsonable(settings)


def resumed_settings(stored: dict, target_spec: dict, explicit: dict) -> dict:
    """Settings to resume with: the stored ones, overridden by those given explicitly."""
    wanted = json.loads(json.dumps(stored))
    wanted["target"] = target_spec
    for key in ("neurons", "seed", "tau", "private_noise"):
        if explicit.get(key) is not None:
            wanted[key] = explicit[key]
    wanted["train"].update({k: explicit[k] for k in TRAIN_FIELDS if explicit.get(k) is not None})
    TrainConfig(**wanted["train"])  # validates with specific messages
    return jsonable(wanted)


def differences(stored: dict, wanted: dict, prefix: str = "") -> list[str]:
    """Each setting that differs, as ``"name <stored> there, <wanted> asked"``."""
    out = []
    for key in sorted(set(stored) | set(wanted)):
        a, b = stored.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {json.dumps(a)} there, {json.dumps(b)} asked")
    return out
