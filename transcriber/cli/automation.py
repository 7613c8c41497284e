"""The ``webhooks`` and ``watch`` commands.

Command names, options and JSON fields are a contract others script against: add, never rename.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import AutomationError
from ..export import parse_formats
from ..jobs import TRANSCRIBE
from ..records import DEFAULT_EVENTS
from ..services.watch import check_rule, parse_after
from ..services.webhooks import INCLUDES, WebhookDispatcher, check_url, new_secret, parse_events, redacted
from ..timefmt import iso_local
from .common import EXIT_FAILED, EXIT_OK, bounded_int, job_id_argument, user_of


def add_parsers(commands) -> None:
    webhooks = commands.add_parser("webhooks", help="POST job events to URLs (add, list, remove, test, log)")
    actions = webhooks.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add an endpoint")
    add.add_argument("url", metavar="URL")
    add.add_argument("--secret", metavar="S", help="key of the HMAC signature (default: a random one, printed)")
    add.add_argument("--events", metavar="E,...", default=",".join(DEFAULT_EVENTS),
                     help="job.completed, job.failed, job.started (default: job.completed,job.failed)")
    add.add_argument("--include", choices=INCLUDES, default="text",
                     help="send the transcript text (default) or links to the exported files")
    listing = actions.add_parser("list", help="the endpoints")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--show-secrets", action="store_true",
                         help="include the secrets and the credentials in URLs (hidden by default)")
    remove = actions.add_parser("remove", help="remove an endpoint, its pending deliveries and its log")
    remove.add_argument("webhook_id", type=job_id_argument, metavar="ID")
    test = actions.add_parser("test", help="send a webhook.test event to an endpoint now")
    test.add_argument("webhook_id", type=job_id_argument, metavar="ID")
    log = actions.add_parser("log", help="every delivery attempt: endpoint, event, job, status code or error, time")
    log.add_argument("--json", action="store_true")
    log.add_argument("--limit", type=bounded_int(1, 1_000_000), metavar="N", help="only the newest N attempts")

    watch = commands.add_parser("watch", help="folders whose new media files are queued by a rule")
    actions = watch.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="watch a folder (and its subfolders)")
    add.add_argument("folder", metavar="DIR")
    add.add_argument("--output", metavar="DIR", help="also export each transcript here")
    add.add_argument("--formats", metavar="FMT,...", help="formats for --output (default: the export_formats setting)")
    add.add_argument("--model", metavar="M")
    add.add_argument("--language", metavar="L")
    add.add_argument("--after", metavar="keep|move:DIR", default="keep", help="what to do with the source after success")
    add.add_argument("--user", metavar="U", help="owner of the jobs (default: your login name)")
    listing = actions.add_parser("list", help="the watch folders and their rules")
    listing.add_argument("--json", action="store_true")
    remove = actions.add_parser("remove", help="stop watching a folder (its jobs stay)")
    remove.add_argument("folder_id", type=job_id_argument, metavar="ID")
    files = actions.add_parser("files", help="the files seen in watch folders and what became of them")
    files.add_argument("folder_id", type=job_id_argument, nargs="?", metavar="ID")
    files.add_argument("--json", action="store_true")


def endpoint_record(endpoint, show_secrets: bool = False) -> dict:
    """One endpoint of ``webhooks list --json``; its secret is null (and URL credentials hidden) unless asked for."""
    return {
        "id": endpoint.id,
        "url": endpoint.url if show_secrets else redacted(endpoint.url),
        "secret": endpoint.secret if show_secrets else None,
        "events": list(endpoint.events),
        "include": endpoint.include,
        "enabled": endpoint.enabled,
    }


def attempt_record(attempt) -> dict:
    """One row of ``webhooks log --json`` (a contract: add fields, never rename them)."""
    return {
        "endpoint_id": attempt.endpoint_id,
        "url": redacted(attempt.url),
        "event": attempt.event,
        "job_id": attempt.job_id,
        "delivery_id": attempt.delivery_id,
        "attempt": attempt.attempt,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "outcome": attempt.outcome,
        "time": iso_local(attempt.attempted_at),
        "duration_seconds": round(attempt.duration_seconds, 3),
    }


def _attempt_line(attempt) -> str:
    result = str(attempt.status_code) if attempt.status_code is not None else f"error: {attempt.error}"
    job = str(attempt.job_id) if attempt.job_id is not None else "-"
    return (f"{iso_local(attempt.attempted_at)}  {attempt.endpoint_id:>3}  {attempt.event:<14} {job:>5}  "
            f"{result:<10} {attempt.outcome:<9} {redacted(attempt.url)}")


def cmd_webhooks(app, args) -> int:
    store = app.store
    if args.action == "add":
        url = check_url(args.url)
        events = parse_events(args.events)
        secret = args.secret or new_secret()
        endpoint = store.automation.add_webhook(url, secret, events, args.include)
        print(f"{endpoint.id}\t{redacted(endpoint.url)}\t{','.join(endpoint.events)}\t{endpoint.include}")
        if not args.secret:
            print(f"secret: {secret}")
        return EXIT_OK
    if args.action == "list":
        endpoints = store.automation.webhooks()
        if args.json:
            print(json.dumps([endpoint_record(endpoint, args.show_secrets) for endpoint in endpoints], indent=2))
        elif not endpoints:
            print("no webhooks")
        for endpoint in endpoints if not args.json else ():
            url = endpoint.url if args.show_secrets else redacted(endpoint.url)
            print(f"{endpoint.id}\t{url}\t{','.join(endpoint.events)}\t{endpoint.include}")
        return EXIT_OK
    if args.action == "remove":
        store.automation.remove_webhook(args.webhook_id)
        print(f"{args.webhook_id}\tremoved")
        return EXIT_OK
    if args.action == "test":
        attempt = WebhookDispatcher(store).send_test(args.webhook_id)
        print(_attempt_line(attempt))
        return EXIT_OK if attempt.outcome == "delivered" else EXIT_FAILED
    attempts = store.automation.delivery_log(limit=args.limit)
    if args.json:
        print(json.dumps([attempt_record(attempt) for attempt in attempts], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not attempts:
        print("no deliveries yet")
    for attempt in attempts:
        print(_attempt_line(attempt))
    return EXIT_OK


def folder_record(folder) -> dict:
    return {
        "id": folder.id,
        "path": folder.path,
        "user": folder.user,
        "model": folder.model,
        "language": folder.language,
        "output": folder.output_dir,
        "formats": list(folder.formats),
        "after": folder.after_text,
    }


def cmd_watch(app, args) -> int:
    store = app.store
    if args.action == "add":
        folder = Path(args.folder).expanduser().absolute()
        if not folder.is_dir():
            raise AutomationError(f"{folder} is not a folder.")
        after, move_to = parse_after(args.after)
        try:
            formats = parse_formats(args.formats) if args.formats else []
        except ValueError as error:
            raise AutomationError(str(error)) from None
        output_dir = str(Path(args.output).expanduser().absolute()) if args.output else None
        check_rule(str(folder), output_dir, move_to)
        # A language the model cannot do is refused now (watch folders always transcribe, see services/watch.py).
        app.engine.default_options(model=args.model, language=args.language, task=TRANSCRIBE)
        added = store.automation.add_watch_folder(
            str(folder),
            user=user_of(args),
            model=args.model,
            language=args.language,
            output_dir=output_dir,
            formats=formats,
            after=after,
            move_to=move_to,
        )
        print(f"{added.id}\t{added.path}\t{added.after_text}")
        return EXIT_OK
    if args.action == "list":
        folders = store.automation.watch_folders()
        if args.json:
            print(json.dumps([folder_record(folder) for folder in folders], indent=2))
            return EXIT_OK
        if not folders:
            print("no watch folders")
        for folder in folders:
            rule = [f"model {folder.model}" if folder.model else "", f"language {folder.language}" if folder.language else "",
                    f"output {folder.output_dir} ({','.join(folder.formats) or 'default formats'})" if folder.output_dir else "",
                    f"after {folder.after_text}"]
            print(f"{folder.id}\t{folder.path}\t{folder.user}\t{'; '.join(part for part in rule if part)}")
        return EXIT_OK
    if args.action == "files":
        seen = store.automation.watch_files(args.folder_id)
        if args.json:
            print(json.dumps([{"folder_id": item.folder_id, "path": item.path, "state": item.state, "job_id": item.job_id,
                               "message": item.message} for item in seen], indent=2, ensure_ascii=False))
            return EXIT_OK
        if not seen:
            print("no files seen yet")
        for item in seen:
            job = str(item.job_id) if item.job_id is not None else "-"
            print(f"{item.folder_id}\t{item.state}\t{job}\t{item.path}" + (f"\t({item.message})" if item.message else ""))
        return EXIT_OK
    store.automation.remove_watch_folder(args.folder_id)
    print(f"{args.folder_id}\tremoved")
    return EXIT_OK


COMMANDS = {"webhooks": cmd_webhooks, "watch": cmd_watch}
