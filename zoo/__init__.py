"""zoo: reference Keras 3 models with one trainer (`python -m train`) and one inference CLI.

Importing `zoo` registers every layer and model for `keras.saving.load_model`.
"""

from zoo.quiet import import_tensorflow

import_tensorflow()  # first: TensorFlow without its C++ start-up noise (zoo/quiet.py)

from zoo import evaluation, layers, models  # noqa: E402, F401  (layers, models: registers serializable classes)
from zoo.errors import UserError  # noqa: E402
from zoo.saving import load  # noqa: E402

__version__ = "0.1.0"
__all__ = ["UserError", "evaluation", "layers", "load", "models"]
