"""Log-mel features computed on demand from a streaming decode.

faster-whisper's sequential decoder walks a features array window by window, asking
only for ``features.shape`` and ``features[:, a:b]``, and only ever forward. This class
answers those requests from an ``AudioStream``, keeping just the audio of the current
window: the whole file is never decoded into memory, so memory does not grow with
the recording's length.

Frames are computed with real neighbouring samples at slice edges, so every frame
equals the one a whole-file computation gives; only the loudness floor (the maximum
minus 8, in log10 units) is taken per slice instead of over the whole file.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from .decode import SAMPLE_RATE

HOP = 160  # samples per feature frame (10 ms)
_CONTEXT_FRAMES = 2  # frames of real audio kept either side of a slice (the FFT window is 400 samples)
# Frames transformed at a time. The library transforms a whole 30-second window at once,
# and its float64/complex temporaries (about 25 MB per window, per stream) were the
# peaks of the engine's memory; in blocks of 5 seconds they stay near 4 MB.
_FFT_BLOCK_FRAMES = 500


def log_mel(samples: np.ndarray, extractor, block_frames: int = _FFT_BLOCK_FRAMES) -> np.ndarray:
    """The log-mel spectrogram ``extractor(samples, padding=0)`` gives, computed in blocks of frames."""
    n_fft = extractor.n_fft
    padded = np.pad(samples.astype(np.float32, copy=False), n_fft // 2, mode="reflect")
    # The library's STFT has one frame more than it keeps (it drops the last).
    frames = (padded.size - n_fft) // HOP
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    mel = np.empty((extractor.mel_filters.shape[0], frames), dtype=np.float32)
    for first in range(0, frames, block_frames):
        last = min(frames, first + block_frames)
        block = np.lib.stride_tricks.sliding_window_view(padded[first * HOP : (last - 1) * HOP + n_fft], n_fft)[::HOP]
        spectrum = np.fft.rfft(block * window, n=n_fft, axis=-1).astype(np.complex64)
        mel[:, first:last] = extractor.mel_filters @ (np.abs(spectrum) ** 2).T
    log_spec = np.log10(np.clip(mel, 1e-10, None))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


class StreamingFeatures:
    """A read-forward, array-like view of a file's log-mel spectrogram.

    Args:
        blocks: 16 kHz mono float32 blocks starting at sample ``first_sample`` of the file.
        extractor: faster-whisper's ``FeatureExtractor`` of the model in use.
        total_samples: the file's length in samples (from probing); frames past the real
            end of a shorter (truncated) file read as silence, and ``missing_samples`` says how much.
        first_sample: where ``blocks`` starts in the file.
        on_window: called with the first frame of each slice requested, before it is
            computed; it may raise to stop the decoder between windows.
    """

    def __init__(
        self,
        blocks: Iterator[np.ndarray],
        extractor,
        total_samples: int,
        first_sample: int = 0,
        on_window: Callable[[int], None] | None = None,
    ):
        self._blocks = iter(blocks)
        self._extractor = extractor
        self.total_samples = int(total_samples)
        self._padded_samples = self.total_samples + HOP  # faster-whisper pads one hop of zeros at the end
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = int(first_sample)
        self._exhausted = False
        self._on_window = on_window
        self.n_mels = extractor.mel_filters.shape[0]
        self.frames = self._padded_samples // HOP
        self.missing_samples = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_mels, self.frames)

    @property
    def ndim(self) -> int:
        return 2

    def __getitem__(self, key) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], slice)):
            raise TypeError("StreamingFeatures supports only [:, start:stop] slices")
        rows, columns = key
        start, stop, step = columns.indices(self.frames)
        if step != 1:
            raise TypeError("StreamingFeatures supports only contiguous slices")
        if self._on_window is not None:
            self._on_window(start)
        return self.compute(start, stop)[rows]

    def compute(self, start: int, stop: int) -> np.ndarray:
        """Features of frames [start, stop), without notifying ``on_window``."""
        stop = max(start, min(stop, self.frames))
        first = max(0, (start - _CONTEXT_FRAMES) * HOP)
        last = min(self._padded_samples, (stop + _CONTEXT_FRAMES) * HOP)
        samples = self._samples(first, last)
        features = log_mel(samples, self._extractor)
        offset = start - first // HOP
        sliced = features[:, offset : offset + (stop - start)]
        if sliced.shape[1] < stop - start:  # only at the very end of a file
            sliced = np.pad(sliced, ((0, 0), (0, stop - start - sliced.shape[1])))
        return sliced

    def _samples(self, first: int, last: int) -> np.ndarray:
        """Samples [first, last) of the zero-padded file; earlier ones are released."""
        if first < self._buffer_start:
            raise ValueError(f"features requested backwards (sample {first} < {self._buffer_start})")
        drop = first - self._buffer_start
        if drop:
            # Release what precedes the slice, reading past it if the decoder skipped ahead.
            skipped = min(drop, self._buffer.size)
            self._buffer = self._buffer[skipped:]
            self._buffer_start += skipped
            while self._buffer_start < first and not self._exhausted:
                block = next(self._blocks, None)
                if block is None:
                    self._exhausted = True
                    break
                if self._buffer_start + block.size <= first:
                    self._buffer_start += block.size
                else:
                    self._buffer = block[first - self._buffer_start :]
                    self._buffer_start = first
            self._buffer_start = max(self._buffer_start, first) if self._buffer.size else first
        end = min(last, self.total_samples)
        pieces = [self._buffer]
        available = self._buffer.size
        while self._buffer_start + available < end and not self._exhausted:
            block = next(self._blocks, None)
            if block is None:
                self._exhausted = True
                break
            pieces.append(block)
            available += block.size
        if len(pieces) > 1:
            self._buffer = np.concatenate(pieces)
        if self._buffer_start + self._buffer.size > self.total_samples:
            self._buffer = self._buffer[: max(0, self.total_samples - self._buffer_start)]
        wanted = last - first
        out = self._buffer[:wanted]
        if out.size < wanted:
            real_end = self._buffer_start + out.size
            if real_end < self.total_samples:
                self.missing_samples = max(self.missing_samples, self.total_samples - real_end)
            out = np.concatenate([out, np.zeros(wanted - out.size, dtype=np.float32)])
        return out

    def buffered(self, start: int, stop: int) -> np.ndarray:
        """Audio of frames [start, stop) still held from the last slice (nothing is read)."""
        first = max(start * HOP - self._buffer_start, 0)
        last = max(min(stop * HOP, self.total_samples) - self._buffer_start, first)
        return self._buffer[first:last]

    @property
    def missing_seconds(self) -> float:
        return self.missing_samples / SAMPLE_RATE
