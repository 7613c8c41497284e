"""``transcriber speakers JOB``: list a job's speakers, tell them apart after the fact, rename and merge them."""

from __future__ import annotations

import json

from ..display import shown
from ..jobs import MAX_SPEAKERS
from .common import EXIT_OK, bounded_int, job_id_argument


def add_parsers(commands) -> None:
    command = commands.add_parser("speakers", help="a job's speakers: list, find (--speakers), rename, merge")
    command.add_argument("job_id", type=job_id_argument, metavar="JOB_ID")
    command.add_argument("--speakers", metavar="auto|N|channels", help="tell the speakers of the completed job apart now")
    command.add_argument("--min-speakers", type=bounded_int(1, MAX_SPEAKERS), metavar="N")
    command.add_argument("--max-speakers", type=bounded_int(1, MAX_SPEAKERS), metavar="N")
    command.add_argument("--rename", nargs=2, metavar=("SPEAKER", "NAME"), help='e.g. --rename 2 "Dr. Amara"')
    command.add_argument("--merge", nargs=2, metavar=("INTO", "OTHER"), help="OTHER's words become INTO's")
    command.add_argument("--json", action="store_true")


def cmd_speakers(app, args) -> int:
    store, job_id = app.store, args.job_id
    if args.speakers:
        app.engine.find_speakers(job_id, args.speakers, args.min_speakers, args.max_speakers)
    if args.rename:
        store.speakers.rename(job_id, store.speakers.label_of(job_id, args.rename[0]), args.rename[1])
    if args.merge:
        store.speakers.merge(job_id, store.speakers.label_of(job_id, args.merge[0]), store.speakers.label_of(job_id, args.merge[1]))
    listed = store.speakers.speakers(job_id)
    if args.json:
        print(json.dumps([{"number": s.label + 1, "name": s.name, "seconds": round(s.seconds, 3)} for s in listed], ensure_ascii=False))
    elif not listed:
        print(f"job {job_id} has no speakers yet (transcribe with --speakers auto, or: transcriber speakers {job_id} --speakers auto)")
    else:
        for speaker in listed:
            print(f"{speaker.label + 1}\t{shown(speaker.name)}\t{speaker.seconds:.1f} s")
    return EXIT_OK


COMMANDS = {"speakers": cmd_speakers}
