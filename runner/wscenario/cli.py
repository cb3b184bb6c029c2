"""The command line: parse arguments, dispatch to a command module, map errors to exit codes.

Each command lives in ``wscenario.commands.<name>`` and is imported only when it runs, so
``wscenario --version`` and ``--help`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from wscenario._version import __version__
from wscenario.commands.record_options import add_record_options, add_redaction_options

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 3
EXIT_INTERRUPTED = 130

EPILOG = """exit codes: 0 all passed, 1 a scenario failed, 2 bad usage or invalid file,
3 could not run, 130 interrupted"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="wscenario",
        description="Run, serve, record and replay WebSocket scenarios written in YAML.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"wscenario {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback for unexpected errors"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate",
        help="check scenario files against the schema and the language's rules",
        description="Check scenario files (and the files under folders) without running them.",
        epilog=EPILOG,
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
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

    run = commands.add_parser(
        "run",
        help="run client scenarios against real servers",
        description="Run client scenarios (files, or the files under folders) and report "
        "each step's outcome.",
        epilog=EPILOG,
    )
    run.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    run.add_argument(
        "--var",
        action="append",
        metavar="NAME=VALUE",
        help="set a declared variable (repeatable)",
    )
    run.add_argument("--url", metavar="URL", help="connect to URL instead of client.url")
    run.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="scenarios run in parallel (default 1)"
    )
    run.add_argument(
        "--timeout", metavar="DURATION", help="default wait for each expect (250ms, 2s, 1m)"
    )
    run.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
    run.add_argument("--report", metavar="FILE.json", help="write a JSON report to FILE.json")
    run.add_argument("--no-color", action="store_true", help="never colour the output")
    add_record_options(run)
    run.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show a traceback for unexpected errors",
    )

    serve = commands.add_parser(
        "serve",
        help="run server scenarios as a fake server that real clients connect to",
        description="Serve server scenarios (files, or the files under folders): every "
        "accepted connection runs its own copy of its scenario's steps and rules. Stops on "
        "Ctrl-C or SIGTERM (open connections get 1001), or after --once / --max-connections; "
        "exits 0 when every connection followed its script.",
        epilog=EPILOG,
    )
    serve.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    serve.add_argument(
        "--listen", metavar="HOST:PORT", help="listen here instead of each scenario's listen"
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow an address other machines can reach (e.g. 0.0.0.0)",
    )
    serve.add_argument(
        "--max-connections", type=int, metavar="N", help="stop after N connections finished"
    )
    serve.add_argument(
        "--once", action="store_true", help="stop after the first connection finished"
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="serve wss:// with this certificate")
    serve.add_argument("--tls-key", metavar="FILE", help="the certificate's private key")
    serve.add_argument(
        "--client-ca", metavar="FILE", help="require client certificates issued by this CA"
    )
    serve.add_argument(
        "--var", action="append", metavar="NAME=VALUE", help="set a declared variable"
    )
    serve.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
    serve.add_argument("--report", metavar="FILE.json", help="write a JSON report to FILE.json")
    serve.add_argument("--no-color", action="store_true", help="never colour the output")
    add_record_options(serve)
    serve.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show a traceback for unexpected errors",
    )
    _add_record(commands)
    _add_replay(commands)
    _add_convert(commands)
    return parser


def _add_record(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    record = commands.add_parser(
        "record",
        help="proxy clients to a server and record each connection as a transcript",
        description="A recording proxy: clients connect to --listen, each connection is relayed "
        "to --upstream (same path and query) and written as one transcript into --out, with "
        "secrets redacted. Runs until Ctrl-C or SIGTERM (open connections get 1001).",
        epilog=EPILOG,
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
    add_redaction_options(record)
    record.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show a traceback for unexpected errors",
    )


def _add_replay(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(
        "replay",
        help="replay a transcript's client side against a server, or its server side",
        description="Replay a recorded transcript: --against URL plays the client (sends what "
        "it sent, expects what the server answered); --serve plays the server to clients. The "
        "transcript's own url is never used: a URL without a path gets the recorded path "
        "and query. Redacted values come from WSCENARIO_SECRET_<NAME> variables.",
        epilog=EPILOG,
    )
    replay.add_argument("transcript", metavar="TRANSCRIPT", help="a .jsonl transcript")
    where = replay.add_mutually_exclusive_group(required=True)
    where.add_argument("--against", metavar="URL", help="play the client against this server")
    where.add_argument("--serve", action="store_true", help="play the server to clients")
    replay.add_argument(
        "--listen", metavar="HOST:PORT", default="127.0.0.1:8765", help="--serve: where to listen"
    )
    replay.add_argument(
        "--once", action="store_true", help="--serve: stop after the first connection"
    )
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
        "--timeout", metavar="DURATION", help="wait for each expected event (default 5s)"
    )
    replay.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
    replay.add_argument("--report", metavar="FILE.json", help="write a JSON report to FILE.json")
    replay.add_argument("--no-color", action="store_true", help="never colour the output")
    replay.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show a traceback for unexpected errors",
    )


def _add_convert(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    convert = commands.add_parser(
        "convert",
        help="turn a transcript into an editable scenario",
        description="Write the scenario that plays one side of a transcript: JSON messages "
        "become json matchers, gaps of 50ms or more become sleeps, values that look volatile "
        "are pointed out in comments (--loose: replaced by wildcards).",
        epilog=EPILOG,
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
    convert.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show a traceback for unexpected errors",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from wscenario.errors import WScenarioError

    try:
        module = importlib.import_module(f"wscenario.commands.{args.command}")
        code: int = module.run(args)
        return code
    except WScenarioError as exc:
        if args.debug:
            raise
        print(f"wscenario: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("wscenario: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
