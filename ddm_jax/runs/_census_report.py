"""The census after training in ``training.json``, ``metrics.json`` and words."""


def census_outcome(history: list | None) -> dict | None:
    """What the census after drift matching found, from the remedy's summaries (None: none ran).

    ``clean``: whether the last census was; ``remedy_rounds_run``: rounds trained;
    ``closed_form_fallback``: whether the closed form replaced the drift fit; ``mismatch``
    and ``exponent_error`` of the last census.
    """
    if not history:
        return None
    last = history[-1]
    stages = [h.get("stage", "") for h in history]
    return {"clean": last.get("clean"),
            "remedy_rounds_run": sum(s.startswith("remedy round") for s in stages),
            "closed_form_fallback": "closed form" in stages,
            "mismatch": last["census_mismatch"],
            "exponent_error": last["census_lyapunov_error"]}  # fmt: skip


def census_sentence(outcome: dict) -> str:
    """`census_outcome` in words, for the train line and ``report.md``."""
    state = "clean" if outcome["clean"] else "NOT clean (see ddm-jax evaluate)"
    how = []
    if outcome.get("closed_form_fallback"):
        how.append("the drift fit replaced by the closed form")
    if outcome["remedy_rounds_run"]:
        how.append(f"{outcome['remedy_rounds_run']} remedy round(s)")
    return f"{state}, " + (" and ".join(how) if how else "no remedy needed") + "."
