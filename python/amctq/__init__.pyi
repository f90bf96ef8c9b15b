# Type stubs of the public amctq API (the implementation: _kernels.py, _observer.py, _pipeline.py).
import os
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

Buffer = Union[npt.NDArray[Any], memoryview, bytearray, Any]
"""A numpy array, a CPU DLPack tensor (torch.Tensor) or any object with the buffer protocol, read in place."""
FloatArray = npt.NDArray[np.float32]
ScaleLike = Union[float, Sequence[float], npt.NDArray[np.floating[Any]]]
ZeroPointLike = Union[int, Sequence[int], npt.NDArray[np.integer[Any]]]
RoundMode = Literal["half_even", "half_away", "half_up", "half_down"]
Method = Literal["minmax", "moving_average", "percentile", "entropy", "mse", "ifmr", "hfmg", "aciq_laplace",
                 "aciq_gaussian", "pot_diffs"]
Preset = Literal["amct", "onnxruntime", "pytorch"]
PathLike = Union[str, "os.PathLike[str]"]
CalibBatch = Union[npt.NDArray[Any], Mapping[str, npt.NDArray[Any]]]

class Error(ValueError):
    @property
    def code(self) -> str: ...

class FileError(Error, OSError): ...
class UnsupportedError(Error, NotImplementedError): ...

@overload
def fake_quantize(x: Buffer, scale: ScaleLike, zero_point: ZeroPointLike, bits: int = ..., signed: bool = ...,
                  axis: Optional[int] = ..., round_mode: RoundMode = ..., out: Optional[Buffer] = ...,
                  mask: Literal[False] = ..., narrow_range: bool = ...) -> FloatArray: ...
@overload
def fake_quantize(x: Buffer, scale: ScaleLike, zero_point: ZeroPointLike, bits: int = ..., signed: bool = ...,
                  axis: Optional[int] = ..., round_mode: RoundMode = ..., out: Optional[Buffer] = ...,
                  *, mask: Literal[True], narrow_range: bool = ...) -> Tuple[FloatArray, npt.NDArray[np.uint8]]: ...
def quantize(x: Buffer, scale: ScaleLike, zero_point: ZeroPointLike, bits: int = ..., signed: bool = ...,
             axis: Optional[int] = ..., round_mode: RoundMode = ..., out: Optional[Buffer] = ...,
             narrow_range: bool = ...) -> npt.NDArray[np.integer[Any]]: ...
def dequantize(q: Buffer, scale: ScaleLike, zero_point: ZeroPointLike, axis: Optional[int] = ...,
               out: Optional[Buffer] = ..., bits: Optional[int] = ..., signed: Optional[bool] = ...,
               narrow_range: bool = ...) -> FloatArray: ...

class Observer:
    def __init__(self, method: Method = ..., bits: int = ..., symmetric: bool = ..., axis: Optional[int] = ...,
                 preset: Preset = ..., threads: int = ..., **options: Any) -> None: ...
    def observe(self, x: Buffer) -> "Observer": ...
    def merge(self, other: "Observer") -> "Observer": ...
    def result(self) -> Dict[str, Any]: ...
    def __getstate__(self) -> Dict[str, Any]: ...
    def __setstate__(self, state: Dict[str, Any]) -> None: ...

def calibrate(x: Union[Buffer, Iterable[Buffer]], method: Method = ..., bits: int = ..., symmetric: bool = ...,
              axis: Optional[int] = ..., preset: Preset = ..., **options: Any) -> Dict[str, Any]: ...
def quantize_model(model_path: PathLike, calib: Union[CalibBatch, Iterable[CalibBatch]],
                   config: Union[None, Dict[str, Any], PathLike] = ..., out_dir: PathLike = ...,
                   stem: Optional[str] = ..., threads: Optional[int] = ...) -> Dict[str, Dict[str, Any]]: ...
def report(model_path: PathLike, calib: Union[CalibBatch, Iterable[CalibBatch]],
           config: Union[None, Dict[str, Any], PathLike] = ..., out: PathLike = ...) -> List[Tuple[str, float, float]]: ...
def create_quant_config(model_path: PathLike, skip_layers: Sequence[str] = ..., batch_num: int = ...,
                        activation_offset: bool = ..., **overrides: Any) -> Dict[str, Any]: ...

class AutoEvaluatorBase:
    def eval_model(self, model_path: str, batch_num: int) -> float: ...
    def is_satisfied(self, original_metric: float, new_metric: float) -> bool: ...

def auto_quantize(model_path: PathLike, calib: Union[CalibBatch, Iterable[CalibBatch]], evaluator: AutoEvaluatorBase,
                  config: Union[None, Dict[str, Any], PathLike] = ..., out_dir: PathLike = ...,
                  strategy: Literal["fallback", "nuq", "mixed"] = ..., max_evals: int = ...,
                  stem: Optional[str] = ...) -> Dict[str, Any]: ...
