"""The exceptions amctq raises; C++ ``amctq::error`` arrives as one of these, message unchanged."""


class Error(ValueError):
    """An amctq error. ``str(e)`` is the C++ message, ``"[amctq.<code>] <where>: <what>"``."""

    @property
    def code(self) -> str:
        """The C++ error code: invalid_argument, shape_mismatch, non_finite, unsupported, io, parse, overflow."""
        text = str(self)
        if text.startswith("[amctq.") and "]" in text:
            return text[len("[amctq."):text.index("]")]
        return "invalid_argument"


class FileError(Error, OSError):
    """A file could not be read or written (code ``io``)."""


class UnsupportedError(Error, NotImplementedError):
    """Valid input that amctq does not handle (code ``unsupported``)."""
