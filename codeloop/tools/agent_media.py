"""``AgentImage`` and ``AgentAudio``: image and audio values returned by tools, with smolagents' behaviour.

Layer 2 (tools). Loaded on first use (``codeloop.AgentImage``), because the image type is a real
``PIL.Image.Image`` (so it crosses the isolated worker's codec and prints in notebooks like any image)
and Pillow is optional. ``to_raw()`` gives the decoded value, ``to_string()`` a path to a temporary file
holding it, which is what an agent's memory and a final answer's text show. Audio needs neither torch nor
soundfile for WAV: samples are read and written with the standard library's ``wave`` module; other
formats use ``soundfile`` when it is installed.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
import wave
from pathlib import Path
from typing import Any

from .agent_types import AgentType

try:
    from PIL import Image as _PILImage
except ImportError as exc:  # pragma: no cover - pillow is in every extra that uses images
    raise ImportError(
        "AgentImage needs Pillow: pip install pillow (or codeloop[test], which includes it)."
    ) from exc

__all__ = ["AgentImage", "AgentAudio"]


def _temp_path(suffix: str) -> str:
    directory = Path(tempfile.gettempdir()) / "codeloop-media"
    directory.mkdir(parents=True, exist_ok=True)
    return str(directory / f"{uuid.uuid4().hex}{suffix}")


class AgentImage(AgentType, _PILImage.Image):
    """An image from a PIL image, encoded bytes, a file path, a numpy array or another AgentImage."""

    def __init__(self, value: Any):
        AgentType.__init__(self)
        _PILImage.Image.__init__(self)
        self._path: str | None = None
        self._raw: _PILImage.Image | None = None
        if isinstance(value, AgentImage):
            self._raw, self._path = value._raw, value._path
        elif isinstance(value, _PILImage.Image):
            self._raw = value
        elif isinstance(value, bytes | bytearray):
            self._raw = _PILImage.open(io.BytesIO(bytes(value)))
            self._raw.load()
        elif isinstance(value, str | os.PathLike):
            self._path = os.fspath(value)
        elif type(value).__module__ == "numpy" or hasattr(value, "__array__"):
            import numpy as np

            array = np.asarray(value)
            if array.dtype != np.uint8:
                array = (array.clip(0, 1) * 255 if array.max() <= 1 else array.clip(0, 255)).astype(np.uint8)
            self._raw = _PILImage.fromarray(array)
        else:
            raise TypeError(
                f"AgentImage takes a PIL image, bytes, a path or an array; got {type(value).__name__}."
            )
        if self._raw is not None:
            self._adopt(self._raw)
        else:
            self.to_raw()  # decode now so PIL's own attributes (size, mode) are right on this object

    def _adopt(self, image: _PILImage.Image) -> None:
        # Share the decoded pixels so PIL's own methods (size, save, convert...) work on this object.
        image.load()  # an image from Image.open is decoded lazily: it has no pixels until loaded
        self.im = image.im
        self._mode = image.mode
        self._size = image.size
        self.info = dict(image.info)

    def to_raw(self) -> _PILImage.Image:
        """The decoded PIL image (read from the file on first use when built from a path)."""
        if self._raw is None:
            assert self._path is not None
            with _PILImage.open(self._path) as img:
                img.load()
                self._raw = img.copy()
            self._adopt(self._raw)
        return self._raw

    def to_string(self) -> str:
        """A path to a PNG file holding the image (written on first use)."""
        if self._path is None:
            self._path = _temp_path(".png")
            self.to_raw().save(self._path, format="PNG")
        return self._path

    def save(self, output: Any, format: str | None = None, **params: Any) -> None:
        self.to_raw().save(output, format=format, **params)

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.to_raw().save(buf, format="PNG")
        return buf.getvalue()

    def __repr__(self) -> str:
        raw = self._raw
        shape = f"{raw.mode} {raw.size[0]}x{raw.size[1]}" if raw is not None else self._path
        return f"AgentImage({shape})"

    def __reduce__(self) -> Any:  # pickles as the plain image it holds
        return (AgentImage, (self.to_raw(),))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AgentImage):
            other = other.to_raw()
        return self.to_raw() == other

    __hash__ = object.__hash__


class AgentAudio(AgentType, str):
    """Audio from a path, encoded bytes (WAV, or any format soundfile reads), or samples.

    ``to_raw()`` returns the samples as a list of floats in [-1, 1] (a numpy array when numpy is
    installed, a torch tensor when the value came in as one); ``samplerate`` says their rate. The object
    is a ``str`` holding ``to_string()``, the path of a WAV file, as in smolagents' text view.
    """

    def __new__(cls, value: Any, samplerate: int = 16_000) -> AgentAudio:
        samples: Any = None
        path: str | None = None
        raw_bytes: bytes | None = None
        if isinstance(value, AgentAudio):
            return value
        if isinstance(value, bytes | bytearray):
            raw_bytes = bytes(value)
        elif isinstance(value, str | os.PathLike):
            path = os.fspath(value)
        elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int):
            samplerate, samples = value
        else:
            samples = value
        if path is None:
            if raw_bytes is not None:
                samples, samplerate = _decode_audio(raw_bytes)
            path = _temp_path(".wav")
            _write_wav(path, samples, samplerate)
        self = str.__new__(cls, path)
        self._path = path
        self._samples = samples
        self.samplerate = samplerate
        return self

    def to_raw(self) -> Any:
        if self._samples is None:
            with open(self._path, "rb") as f:
                self._samples, self.samplerate = _decode_audio(f.read())
        return self._samples

    def to_string(self) -> str:
        return self._path

    def to_bytes(self) -> bytes:
        """The audio as WAV file bytes."""
        with open(self._path, "rb") as f:
            return f.read()

    def __repr__(self) -> str:
        return f"AgentAudio({self._path!r}, samplerate={self.samplerate})"

    def __reduce__(self) -> Any:
        return (AgentAudio, (self.to_bytes(),))


def _decode_audio(data: bytes) -> tuple[Any, int]:
    if data[:4] == b"RIFF":
        with wave.open(io.BytesIO(data), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            frames = w.readframes(w.getnframes())
        return _pcm_to_samples(frames, width, channels), rate
    try:
        import soundfile
    except ImportError as exc:
        raise ValueError(
            "This audio is not WAV; reading other formats needs soundfile (pip install soundfile)."
        ) from exc
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return samples, int(rate)


def _pcm_to_samples(frames: bytes, width: int, channels: int) -> Any:
    if width != 2:
        raise ValueError(f"Only 16-bit PCM WAV is read without soundfile; this one has {8 * width}-bit samples.")
    try:
        import numpy as np
    except ImportError:
        import array

        ints = array.array("h", frames)
        return [v / 32768.0 for v in ints[::channels]]
    ints = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return ints.reshape(-1, channels) if channels > 1 else ints


def _write_wav(path: str, samples: Any, samplerate: int) -> None:
    if hasattr(samples, "detach"):  # a torch tensor
        samples = samples.detach().cpu().numpy()
    values = samples.tolist() if hasattr(samples, "tolist") else list(samples)
    channels = 1
    if values and isinstance(values[0], list):
        channels = len(values[0])
        values = [v for frame in values for v in frame]
    pcm = bytearray()
    for v in values:
        pcm += int(max(-1.0, min(1.0, float(v))) * 32767).to_bytes(2, "little", signed=True)
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(int(samplerate))
        w.writeframes(bytes(pcm))
