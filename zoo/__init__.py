"""zoo: reference Keras 3 models with one trainer (`python -m train`) and one inference CLI.

Importing `zoo` registers every layer and model for `keras.saving.load_model`.
"""

from zoo import layers, metrics, models  # noqa: F401  (registers serializable classes)
from zoo.errors import UserError
from zoo.saving import load

__version__ = "0.1.0"
__all__ = ["UserError", "layers", "load", "metrics", "models"]
