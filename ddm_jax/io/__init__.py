"""Files: saving and loading models, exporting weights, and atomic writes."""

from ._io import (
    CorruptFileError as CorruptFileError,
    atomic_write_bytes as atomic_write_bytes,
    atomic_write_json as atomic_write_json,
    atomic_write_text as atomic_write_text,
    export_weights as export_weights,
    load_model as load_model,
    load_weights as load_weights,
    model_from_weights as model_from_weights,
    save_model as save_model,
)
