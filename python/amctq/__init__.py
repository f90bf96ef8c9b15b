"""amctq: quantization kernels, streaming calibration observers and the AMCT-style PTQ
pipeline of the amctq C++ library, on numpy arrays and any buffer, without copies.

Every function runs the library's own C++ code (the numbers are those of the ``amctq`` command
line tool); errors arrive as :class:`amctq.Error` (a ``ValueError``) with the C++ message.
"""

from ._errors import Error, FileError, UnsupportedError
from ._kernels import dequantize, fake_quantize, quantize
from ._observer import Observer, calibrate
from ._pipeline import AutoEvaluatorBase, auto_quantize, create_quant_config, quantize_model, report

__all__ = [
    "AutoEvaluatorBase",
    "auto_quantize",
    "Error",
    "FileError",
    "UnsupportedError",
    "Observer",
    "calibrate",
    "create_quant_config",
    "dequantize",
    "fake_quantize",
    "quantize",
    "quantize_model",
    "report",
]
__version__ = "0.1.0"
