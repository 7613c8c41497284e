"""Benchmark: how long after a sentence is spoken its text is printed by ``transcriber record --live``.

    python benchmarks/live.py                   # quiet machine, then with 2 busy processes beside it
    python benchmarks/live.py --load 0 --model tiny.en --pause 1.0

A private PulseAudio with a virtual microphone (as in tests/virtual_mic.py) receives espeak-ng
sentences one after another, with a pause between them, while ``record --live`` records from
it in a process of its own. For each sentence the lag is the time from the end of its playback
(``paplay`` returns) to the moment a line holding its last word appears on the command's
stdout. After the last sentence the recording is stopped (Ctrl+C), and the final transcript is
scored against the sentences, next to ``transcriber transcribe`` of the saved recording.
``--load N`` runs N busy processes meanwhile: a machine that cannot keep up.

Needs pulseaudio, pactl, paplay and espeak-ng; results print as a Markdown table and are
saved under benchmarks/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from scoring import normalise, word_error_rate  # noqa: E402

SENTENCES = [
    "The weather today is sunny with a gentle breeze.",
    "Please remember to bring your umbrella tomorrow morning.",
    "The library opens at nine and closes late on Thursday.",
    "Our meeting starts after lunch in the large conference room.",
    "She bought fresh bread and a bottle of orange juice.",
    "The train to the city leaves from the northern station.",
    "We need three more chairs for the guests this evening.",
    "His favourite hobby is painting old wooden boats.",
    "The children played football in the park until sunset.",
    "Turn left at the bakery and the museum is on your right.",
]


class Pulse:
    """A private PulseAudio whose default source is the monitor of the sink ``mic_sink``."""

    def __init__(self) -> None:
        self.runtime = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime)}
        self.env.pop("PULSE_SERVER", None)

    def __enter__(self) -> "Pulse":
        run = lambda *command: subprocess.run(command, env=self.env, check=True, capture_output=True)  # noqa: E731
        run("pulseaudio", "-n", "--daemonize=yes", "--exit-idle-time=-1", "--disallow-exit",
            "-L", "module-native-protocol-unix", "-L", "module-null-sink sink_name=speaker",
            "-L", "module-null-sink sink_name=mic_sink rate=16000 channels=1", "-L", "module-always-sink")
        run("pactl", "set-default-sink", "speaker")
        run("pactl", "set-default-source", "mic_sink.monitor")
        return self

    def play(self, path: Path) -> None:
        subprocess.run(["paplay", "-d", "mic_sink", str(path)], env=self.env, check=True)

    def __exit__(self, *exc) -> None:
        subprocess.run(["pulseaudio", "--kill"], env=self.env, capture_output=True)
        shutil.rmtree(self.runtime, ignore_errors=True)


def lines_of(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put((time.monotonic(), line.rstrip("\n")))
    into.put(None)


def measure(pulse: Pulse, speech: list[Path], *, model: str, pause: float, load: int, work: Path) -> dict:
    data = work / f"data-load{load}"
    command = [sys.executable, "-m", "transcriber", "--data-dir", str(data), "record", "--live", "--model", model]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=pulse.env,
                               cwd=str(REPO))
    for line in process.stderr:
        if "recording to" in line:
            break
    else:
        raise SystemExit(f"record --live did not start: {process.wait()}")
    printed: queue.Queue = queue.Queue()
    threading.Thread(target=lines_of, args=(process.stdout, printed), daemon=True).start()
    errors: list[str] = []
    threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True).start()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    seen: list[tuple[float, str]] = []  # every line printed: (arrival, text)
    first_unused = 0  # lines before this one hold earlier sentences (one line may hold two)
    lags: list[float | None] = []
    try:
        time.sleep(1.0)
        for path, sentence in zip(speech, SENTENCES):
            pulse.play(path)
            ended = time.monotonic()
            last_word = normalise(sentence)[-1]
            deadline = ended + 60.0
            lag = None
            while lag is None and time.monotonic() < deadline:
                while not printed.empty():
                    item = printed.get_nowait()
                    if item is not None:
                        seen.append(item)
                for number in range(first_unused, len(seen)):
                    at, text = seen[number]
                    if last_word in normalise(text):
                        lag, first_unused = max(0.0, at - ended), number
                        break
                if lag is None:
                    time.sleep(0.05)
            lags.append(lag)
            time.sleep(pause)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=600)
    job = json.loads(subprocess.run([sys.executable, "-m", "transcriber", "--data-dir", str(data), "list", "--json"],
                                    capture_output=True, text=True, check=True, cwd=str(REPO)).stdout)[0]
    final = subprocess.run([sys.executable, "-m", "transcriber", "--data-dir", str(data), "export", str(job["id"]),
                            "--format", "txt", "-o", "-"], capture_output=True, text=True, check=True, cwd=str(REPO)).stdout
    out = work / f"file-load{load}"
    subprocess.run([sys.executable, "-m", "transcriber", "--data-dir", str(work / f"other-load{load}"), "transcribe",
                    job["path"], "--model", model, "-o", str(out)], capture_output=True, check=True, cwd=str(REPO))
    from_file = next(out.glob("*.txt")).read_text()
    reference = " ".join(SENTENCES)
    found = [lag for lag in lags if lag is not None]
    return {
        "load": load,
        "model": model,
        "pause_s": pause,
        "sentences": len(lags),
        "printed_in_60s": len(found),
        "lags_s": [round(lag, 2) if lag is not None else None for lag in lags],
        "median_lag_s": round(statistics.median(found), 2) if found else None,
        "max_lag_s": round(max(found), 2) if found else None,
        "wer_live_final": round(word_error_rate(reference, final), 4),
        "wer_saved_file": round(word_error_rate(reference, from_file), 4),
        "behind_warnings": sum("behind" in line for line in errors),
        "audio_s": job["duration_seconds"],
        "live_final": final,
        "saved_file": from_file,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds of silence between sentences")
    parser.add_argument("--load", type=int, action="append", help="busy processes beside it (repeatable; default 0 and 2)")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()
    for tool in ("pulseaudio", "pactl", "paplay", "espeak-ng"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    started = time.time()
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="live-bench-") as folder:
        work = Path(folder)
        speech = []
        for number, sentence in enumerate(SENTENCES):
            path = work / f"sentence{number}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), sentence], check=True)
            speech.append(path)
        results = []
        with Pulse() as pulse:
            for load in args.load or [0, 2]:
                results.append(measure(pulse, speech, model=args.model, pause=args.pause, load=load, work=work))
                print(json.dumps({key: value for key, value in results[-1].items() if key not in ("live_final", "saved_file")}),
                      flush=True)
    print(f"\n{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, load average {load_average:.1f} "
          f"at the start, {time.time() - started:.0f} s\n")
    print("| busy processes beside it | sentences printed | lag, median | lag, max | WER live | WER saved file | behind warnings |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        print(f"| {row['load']} | {row['printed_in_60s']}/{row['sentences']} | {row['median_lag_s']} s | {row['max_lag_s']} s "
              f"| {row['wer_live_final'] * 100:.1f}% | {row['wer_saved_file'] * 100:.1f}% | {row['behind_warnings']} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "live.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
