"""What `train_run` (and the fit to data) report after every chunk of steps."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class TrainProgress:
    """What a `train_run` progress callback receives after every chunk of steps.

    Attributes:
        phase: ``"drift"``, ``"remedy"`` (the spurious-attractor remedy, `refine_attractors`)
            or ``"noise"`` (diffusion matching of state-dependent noise).
        step: steps done in this phase.
        total: steps of this phase (for the remedy: at most, as it stops once clean).
        loss: mean loss over the last chunk.
        rel_error: relative L2 drift (or diffusion) error on fixed monitor points.
        checkpoint: whether a checkpoint was written after this chunk.
        elapsed: training seconds so far, over all sessions of this run.
    """

    phase: str
    step: int
    total: int
    loss: float
    rel_error: float
    checkpoint: bool
    elapsed: float
    census: dict | None = None  # remedy only: the census summary just made (else None)
