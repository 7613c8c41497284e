"""Probe media files and decode their audio as a stream of 16 kHz mono samples.

Nothing here holds a whole file in memory: ``AudioStream`` yields blocks as PyAV decodes
them, so memory stays flat however long the recording is.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import AudioError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000

# Used to pick media out of folders; a file named explicitly is probed whatever its extension.
MEDIA_EXTENSIONS = frozenset(
    ".wav .wave .flac .mp3 .m4a .m4b .aac .ogg .oga .opus .wma .aif .aiff .aifc .amr .ac3 .alac .caf .mka "
    ".mp4 .m4v .mov .mkv .webm .avi .wmv .mpg .mpeg .ts .mts .3gp .flv .ogv .au .snd .spx .gsm .dts .ape .wv".split()
)

# How much shorter than its header the decodable audio may be before we call a file truncated:
# codecs pad and trim a few frames at either end.
TRUNCATION_TOLERANCE_SECONDS = 1.0
TRUNCATION_TOLERANCE_RATIO = 0.01


@dataclass(frozen=True)
class MediaInfo:
    """What probing a file found.

    ``duration_seconds`` is measured by reading every audio packet, so it is right even
    when a header is missing or wrong; ``declared_seconds`` is what the header claims.
    """

    duration_seconds: float
    declared_seconds: float | None
    codec: str
    sample_rate: int
    channels: int
    has_video: bool

    @property
    def truncated(self) -> bool:
        if not self.declared_seconds:
            return False
        missing = self.declared_seconds - self.duration_seconds
        return missing > max(TRUNCATION_TOLERANCE_SECONDS, TRUNCATION_TOLERANCE_RATIO * self.declared_seconds)


def format_clock(seconds: float) -> str:
    """H:MM:SS or M:SS, for messages."""
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# How far past the last audio packet the demuxer may read: FFmpeg's parsers gather bytes that
# are no audio (a file zero-padded to 400 MB) into one packet, held in memory whole.
MAX_BYTES_WITHOUT_AUDIO = 64 * 1024 * 1024


class _MediaFile(io.RawIOBase):
    """The file as FFmpeg reads it, ending early where nothing but non-audio bytes would follow.

    The demuxing loops call ``audio_until`` with the end of each audio packet; a read that
    would go ``MAX_BYTES_WITHOUT_AUDIO`` past it (and past the last seek) sees the end of the
    file instead, so memory stays bounded whatever the file holds.
    """

    def __init__(self, path: str):
        super().__init__()
        self._file = open(path, "rb")
        self._allowed_until = MAX_BYTES_WITHOUT_AUDIO

    def audio_until(self, offset: int | None) -> None:
        if offset is not None and offset >= 0:
            self._allowed_until = max(self._allowed_until, offset + MAX_BYTES_WITHOUT_AUDIO)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        room = self._allowed_until - self._file.tell()
        if room <= 0:
            return 0
        view = memoryview(buffer)[:room]
        return self._file.readinto(view)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self._file.seek(offset, whence)
        if whence != io.SEEK_END:  # a seek to the end only asks the size
            self._allowed_until = max(self._allowed_until, position + MAX_BYTES_WITHOUT_AUDIO)
        return position

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()


def _open(path: str) -> tuple[av.container.InputContainer, _MediaFile]:
    name = Path(path).name
    try:
        media = _MediaFile(path)
    except FileNotFoundError:
        raise AudioError(f"{name}: file not found.", "missing") from None
    except IsADirectoryError:
        raise AudioError(f"{name} is a folder, not a file.", "not_media") from None
    except PermissionError:
        raise AudioError(f"{name}: permission denied; the file cannot be read.", "unreadable") from None
    try:
        return av.open(media, mode="r", metadata_errors="ignore"), media
    except (av.error.InvalidDataError, av.error.EOFError):
        media.close()
        raise AudioError(
            f"{name} is not an audio or video file, or it is damaged: its content is not a recognised media format.",
            "not_media",
        ) from None
    except av.FFmpegError as error:
        media.close()
        raise AudioError(f"{name} cannot be opened as media: {error}.", "not_media") from None


def _wav_declared_seconds(path: str) -> float | None:
    """The length a WAV header declares. FFmpeg and libsndfile both clamp it to the file size,
    which hides truncation, so read the RIFF chunks ourselves."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(12)
            if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
                return None
            byte_rate = None
            while True:
                chunk = handle.read(8)
                if len(chunk) < 8:
                    return None
                kind, size = chunk[:4], int.from_bytes(chunk[4:8], "little")
                if kind == b"fmt ":
                    fmt = handle.read(size + (size & 1))
                    byte_rate = int.from_bytes(fmt[8:12], "little") if len(fmt) >= 12 else None
                elif kind == b"data":
                    # 0 and 0xFFFFFFFF mean "unknown" (a recorder that never finalised its header).
                    if not byte_rate or size in (0, 0xFFFFFFFF):
                        return None
                    return size / byte_rate
                else:
                    handle.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None


def probe(path: str | os.PathLike) -> MediaInfo:
    """Read a file's audio packets to learn its real duration.

    Raises:
        AudioError: missing, unreadable, not media, no audio track, or no audio in it.
    """
    path = str(path)
    name = Path(path).name
    container, media = _open(path)
    with container, media:
        if not container.streams.audio:
            if container.streams.video:
                raise AudioError(f"{name} is a video without an audio track; there is nothing to transcribe.", "no_audio")
            raise AudioError(f"{name} is not an audio or video file (no audio stream found).", "not_media")
        stream = container.streams.audio[0]
        declared = None
        if stream.duration is not None and stream.time_base is not None:
            declared = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            declared = container.duration / av.time_base
        end = 0.0
        first: float | None = None
        packets = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pos is not None:
                    media.audio_until(packet.pos + packet.size)
                packets += 1
                if packet.pts is not None and packet.time_base is not None:
                    start = float(packet.pts * packet.time_base)
                    first = start if first is None else min(first, start)
                    end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        except av.FFmpegError as error:
            log.info("demuxing %s stopped early: %s", path, error)
        if packets == 0:
            raise AudioError(f"{name} contains no audio data.", "empty")
        if stream.codec_context.name.startswith("pcm_"):
            declared = _wav_declared_seconds(path) or declared
        duration = end - (first or 0.0) if end > 0 else (declared or 0.0)
        if duration <= 0:
            raise AudioError(f"{name} contains no audio data.", "empty")
        return MediaInfo(
            duration_seconds=duration,
            declared_seconds=declared,
            codec=stream.codec_context.name,
            sample_rate=stream.rate or 0,
            channels=stream.channels or 0,
            has_video=bool(container.streams.video),
        )


class AudioStream:
    """16 kHz mono float32 samples of a file's first audio track, from ``start_seconds`` on.

    Iterate ``blocks()``; afterwards ``decoded_samples`` says how much came out and
    ``damaged_packets`` how many packets could not be decoded (they are skipped, as a
    player would).
    """

    def __init__(self, path: str | os.PathLike, start_seconds: float = 0.0, *, channels: int = 1):
        self.path = str(path)
        self.start_seconds = max(0.0, start_seconds)
        self.channels = channels  # 2: blocks are (samples, 2), a mono source on both (speakers by channel)
        self.source_channels = 0  # the first audio track's channel count, once decoding began
        self.decoded_samples = 0
        self.damaged_packets = 0

    def blocks(self) -> Iterator[np.ndarray]:
        container, media = _open(self.path)
        with container, media:
            if not container.streams.audio:
                raise AudioError(f"{Path(self.path).name} has no audio track.", "no_audio")
            stream = container.streams.audio[0]
            self.source_channels = stream.codec_context.channels or 1
            if self.start_seconds > 0:
                try:
                    container.seek(int(self.start_seconds / stream.time_base), stream=stream, backward=True)
                except av.FFmpegError as error:  # unseekable: decode from the start and drop what precedes
                    log.info("seeking %s failed (%s); decoding from the start", self.path, error)
            # Decoded sample 0 sits at the stream's start time (an MP3's encoder delay, for one).
            origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            layout = "stereo" if self.channels == 2 else "mono"
            resampler = av.AudioResampler(format="flt", layout=layout, rate=SAMPLE_RATE)
            to_drop: int | None = 0 if self.start_seconds <= 0 else None  # output samples before the start
            for frame in self._frames(container, stream, media):
                if to_drop is None:
                    frame_time = float(frame.time) - origin if frame.time is not None else 0.0
                    if frame_time + frame.samples / frame.sample_rate <= self.start_seconds:
                        continue
                    to_drop = int(round(max(0.0, self.start_seconds - frame_time) * SAMPLE_RATE))
                frame.pts = None  # the resampler insists on monotonic timestamps; time is counted in samples
                for out in resampler.resample(frame):
                    block, to_drop = self._take(out, to_drop)
                    if block is not None:
                        yield block
            for out in resampler.resample(None):
                block, to_drop = self._take(out, to_drop or 0)
                if block is not None:
                    yield block

    def _take(self, frame: av.AudioFrame, to_drop: int) -> tuple[np.ndarray | None, int]:
        samples = frame.to_ndarray().reshape(-1, 2) if self.channels == 2 else frame.to_ndarray().reshape(-1)
        if to_drop:
            dropped = min(to_drop, samples.size)
            samples = samples[dropped:]
            to_drop -= dropped
        if samples.size == 0:
            return None, to_drop
        self.decoded_samples += len(samples)
        return samples.astype(np.float32, copy=False), to_drop

    def _frames(self, container, stream, media: _MediaFile) -> Iterator[av.AudioFrame]:
        for packet in container.demux(stream):
            if packet.pos is not None and packet.size:
                media.audio_until(packet.pos + packet.size)
            try:
                frames = packet.decode()
            except av.FFmpegError:
                self.damaged_packets += 1
                continue
            yield from frames


def read_seconds(path: str | os.PathLike, start_seconds: float, seconds: float) -> np.ndarray:
    """Up to ``seconds`` of 16 kHz mono samples from ``start_seconds`` on (a short stretch, read as a stream)."""
    wanted = int(seconds * SAMPLE_RATE)
    pieces, total = [], 0
    for block in AudioStream(path, start_seconds).blocks():
        pieces.append(block)
        total += block.size
        if total >= wanted:
            break
    return np.concatenate(pieces)[:wanted] if pieces else np.zeros(0, dtype=np.float32)
