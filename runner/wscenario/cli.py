"""The command line: parse arguments, dispatch to a command module, map errors to exit codes.

Each command lives in ``wscenario.commands.<name>`` and is imported only when it runs, so
``wscenario --version`` and ``--help`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING

from wscenario._version import __version__
from wscenario.commands.limit_options import add_limit_option
from wscenario.commands.record_options import add_record_options, add_redaction_options
from wscenario.commands.tls_options import add_tls_options

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 3
EXIT_INTERRUPTED = 130

Parser = argparse.ArgumentParser

EPILOG = """exit codes: 0 all passed, 1 a scenario failed, 2 bad usage or invalid file,
3 could not run, 130 interrupted"""

DEBUG_HELP = "show a traceback with each error"


if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="wscenario",
        description="Run, serve, record and replay WebSocket scenarios written in YAML.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"wscenario {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_validate, _add_run, _add_serve, _add_record, _add_replay, _add_convert):
        add_debug(add(commands))
    return parser


def _command(commands: Subparsers, name: str, summary: str, description: str) -> Parser:
    return commands.add_parser(name, help=summary, description=description, epilog=EPILOG)


def add_debug(parser: Parser) -> None:
    """``--debug`` on a command too (the top-level one stays unless the command sets it)."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help=DEBUG_HELP,
    )


def _add_paths(parser: Parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")


def _add_reports(parser: Parser) -> None:
    """``--junit``, ``--report`` and ``--no-color``: what every command that runs steps has."""
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
    parser.add_argument("--report", metavar="FILE.json", help="write a JSON report to FILE.json")
    parser.add_argument("--no-color", action="store_true", help="never colour the output")


def _add_vars(parser: Parser) -> None:
    parser.add_argument(
        "--var", action="append", metavar="NAME=VALUE", help="set a declared variable (repeatable)"
    )


def _add_listening(parser: Parser, *, once: str) -> None:
    """``--allow-remote`` and ``--once`` for commands that listen."""
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow an address other machines can reach (e.g. 0.0.0.0)",
    )
    parser.add_argument("--once", action="store_true", help=once)


def _add_validate(commands: Subparsers) -> Parser:
    validate = _command(
        commands,
        "validate",
        "check scenario files against the schema and the language's rules",
        "Check scenario files (and the files under folders) without running them.",
    )
    _add_paths(validate)
    validate.add_argument(
        "--max-errors",
        type=int,
        default=20,
        metavar="N",
        help="errors shown per file before the rest are counted (default 20)",
    )
    validate.add_argument(
        "--list", action="store_true", help="also list each valid scenario with its side"
    )
    return validate


def _add_run(commands: Subparsers) -> Parser:
    run = _command(
        commands,
        "run",
        "run client scenarios against real servers",
        "Run client scenarios (files, or the files under folders) and report each step's outcome.",
    )
    _add_paths(run)
    _add_vars(run)
    run.add_argument("--url", metavar="URL", help="connect to URL instead of client.url")
    run.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="scenarios run in parallel (default 1)"
    )
    run.add_argument(
        "--timeout", metavar="DURATION", help="default wait for each expect (250ms, 2s, 1m)"
    )
    add_limit_option(run)
    _add_reports(run)
    add_record_options(run)
    return run


def _add_serve(commands: Subparsers) -> Parser:
    serve = _command(
        commands,
        "serve",
        "run server scenarios as a fake server that real clients connect to",
        "Serve server scenarios (files, or the files under folders): every accepted connection "
        "runs its own copy of its scenario's steps and rules. Stops on Ctrl-C or SIGTERM (open "
        "connections get 1001), or after --once / --max-connections; exits 0 when every "
        "connection followed its script.",
    )
    _add_paths(serve)
    serve.add_argument(
        "--listen", metavar="HOST:PORT", help="listen here instead of each scenario's listen"
    )
    _add_listening(serve, once="stop after the first connection finished")
    serve.add_argument(
        "--max-connections", type=int, metavar="N", help="stop after N connections finished"
    )
    add_tls_options(serve)
    add_limit_option(serve)
    _add_vars(serve)
    _add_reports(serve)
    add_record_options(serve)
    return serve


def _add_record(commands: Subparsers) -> Parser:
    record = _command(
        commands,
        "record",
        "proxy clients to a server and record each connection as a transcript",
        "A recording proxy: clients connect to --listen, each connection is relayed to "
        "--upstream (same path and query) and written as one transcript into --out, with "
        "secrets redacted. Runs until Ctrl-C or SIGTERM (open connections get 1001).",
    )
    record.add_argument(
        "--listen", required=True, metavar="HOST:PORT", help="where clients connect"
    )
    record.add_argument(
        "--upstream", required=True, metavar="URL", help="the ws:// or wss:// server to relay to"
    )
    record.add_argument(
        "--out",
        default="transcripts",
        metavar="DIR",
        help="transcript folder (default: transcripts)",
    )
    record.add_argument("--cafile", metavar="FILE", help="also trust this CA for a wss:// upstream")
    record.add_argument(
        "--insecure", action="store_true", help="do not verify the upstream's certificate"
    )
    record.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow an address other machines can reach (e.g. 0.0.0.0)",
    )
    record.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="connections open at once before new ones get 503 (default 256)",
    )
    add_tls_options(record)
    add_limit_option(record)
    add_redaction_options(record)
    return record


def _add_replay(commands: Subparsers) -> Parser:
    replay = _command(
        commands,
        "replay",
        "replay a transcript's client side against a server, or its server side",
        "Replay a recorded transcript: --against URL plays the client (sends what it sent, "
        "expects what the server answered); --serve plays the server to clients. The "
        "transcript's own url is never used: a URL without a path gets the recorded path and "
        "query. Redacted values come from WSCENARIO_SECRET_<NAME> variables. Ids the peer "
        "sent that the side played sends back are sent as the peer sent them this time.",
    )
    replay.add_argument(
        "transcript",
        metavar="TRANSCRIPT",
        nargs="+",
        help="a .jsonl transcript; --against plays several, one after another",
    )
    where = replay.add_mutually_exclusive_group(required=True)
    where.add_argument("--against", metavar="URL", help="play the client against this server")
    where.add_argument("--serve", action="store_true", help="play the server to clients")
    replay.add_argument(
        "--listen", metavar="HOST:PORT", default="127.0.0.1:8765", help="--serve: where to listen"
    )
    _add_listening(replay, once="--serve: stop after the first connection")
    add_tls_options(replay)
    add_limit_option(replay)
    add_record_options(replay)
    replay.add_argument(
        "--timing",
        default="recorded",
        metavar="recorded|fast|xN",
        help="recorded gaps (default), fast (no waits), or xN (N times as fast: x2, x0.5)",
    )
    replay.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="POINTER",
        help="a JSON Pointer never compared in JSON messages, e.g. /ts (repeatable)",
    )
    replay.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="POINTER=RULE",
        help="compare the value at POINTER in expected JSON by a rule instead: any:TYPE "
        "(string, number, integer, boolean, object, array, null, true) or regex:PATTERN, "
        "e.g. /ts=any:number (repeatable)",
    )
    replay.add_argument(
        "--loose",
        action="store_true",
        help="values that look volatile in expected JSON (uuids, timestamps, epoch times, "
        "tokens, counters) match any value of their kind, as convert --loose writes them",
    )
    replay.add_argument(
        "--timeout", metavar="DURATION", help="wait for each expected event (default 5s)"
    )
    _add_reports(replay)
    return replay


def _add_convert(commands: Subparsers) -> Parser:
    convert = _command(
        commands,
        "convert",
        "turn a transcript into an editable scenario",
        "Write the scenario that plays one side of a transcript: JSON messages become json "
        "matchers, gaps of 50ms or more become sleeps, values that look volatile are pointed "
        "out in comments (--loose: replaced by wildcards); ids the peer sent and this side "
        "sends back are saved and sent as variables.",
    )
    convert.add_argument("transcript", metavar="TRANSCRIPT", help="a .jsonl transcript")
    convert.add_argument(
        "--side", required=True, choices=("client", "server"), help="the side to play"
    )
    convert.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    convert.add_argument("--force", action="store_true", help="overwrite an existing FILE")
    convert.add_argument("--loose", action="store_true", help="wildcard values that look volatile")
    convert.add_argument(
        "--profile",
        choices=("raw", "ohos"),
        default="raw",
        help="client profile of the scenario (default raw: the protocol's own truth)",
    )
    return convert


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from wscenario.errors import ScenarioLoadError, WScenarioError

    try:
        module = importlib.import_module(f"wscenario.commands.{args.command}")
        code: int = module.run(args)
        return code
    except WScenarioError as exc:
        if args.debug:  # only adds where it came from: the message and exit code stay
            traceback.print_exception(exc, file=sys.stderr)
        if isinstance(exc, ScenarioLoadError):  # each diagnostic says where and what already
            print("\n".join(d.render() for d in exc.diagnostics), file=sys.stderr)
        else:
            print(f"wscenario: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("wscenario: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
