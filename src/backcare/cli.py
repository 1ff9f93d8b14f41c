"""The `backcare` command line. It needs no database and no web server, and starts fast: Django is never imported
on these paths (the clinic application gets its own commands)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, Any, NoReturn

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class InputRejected(Exception):
    """Input the command cannot use; the message says what is wrong (exit status 1)."""


def _fail(message: str, status: int = EXIT_REJECTED) -> NoReturn:
    sys.stderr.write(f"backcare: {message}\n")
    raise SystemExit(status)


def _open_input(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise InputRejected(f"{path}: is a directory, not an intake file") from None
    except OSError as e:
        raise InputRejected(f"{path}: cannot read: {e.strerror or e}") from None


def _read_one(path: str) -> bytes:
    from backcare.clinical.intake import MAX_INTAKE_BYTES

    stream = _open_input(path)
    try:
        data = stream.read(MAX_INTAKE_BYTES + 1)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if len(data) > MAX_INTAKE_BYTES:
        raise InputRejected(
            f"{path}: larger than {MAX_INTAKE_BYTES:,} bytes; one intake is a few kilobytes "
            "(for many intakes use --batch with one JSON document per line)"
        )
    return data


def _rule_base(args: argparse.Namespace) -> Any:
    from backcare.clinical.rulebase import RuleBaseError, default_rule_base, load_rule_base

    try:
        if args.rule_base:
            if not Path(args.rule_base, "rulebase.toml").is_file():
                _fail(f"{args.rule_base}: not a rule base folder (no rulebase.toml)")
            return load_rule_base(Path(args.rule_base))
        return default_rule_base()
    except RuleBaseError as e:
        _fail(f"the rule base cannot be loaded: {e}")


def _screener(args: argparse.Namespace) -> Any:
    from backcare.clinical.engine import Screener
    from backcare.clinical.plan import Course

    rule_base = _rule_base(args)
    course = None
    given = (args.sessions, args.weeks, args.reassess_after)
    if any(v is not None for v in given):
        defaults = rule_base.plan["course"]
        sessions, weeks, reassess = (
            d if v is None else v
            for v, d in zip(
                given, (defaults["sessions"], defaults["weeks"], defaults["reassess_after_session"]), strict=True
            )
        )
        try:
            course = Course(sessions, weeks, reassess)
        except ValueError as e:
            _fail(f"course: {e}", EXIT_USAGE)
    return Screener(rule_base, course=course)


def cmd_screen(args: argparse.Namespace) -> int:
    if args.batch:
        return _screen_batch(args)
    from backcare.clinical.intake import IntakeError, parse_intake

    name = "standard input" if args.path == "-" else args.path
    try:
        intake = parse_intake(_read_one(args.path))
    except IntakeError as e:
        lines = [f"{name}: not a valid intake:"] + [f"  {err}" for err in e.errors]
        _fail("\n".join(lines))
    screener = _screener(args)
    fmt = args.format or ("text" if sys.stdout.isatty() else "json")
    if fmt == "text":
        from backcare.clinical.render import screening_text

        out = screening_text(screener.screen(intake), screener.rule_base).encode("utf-8")
    else:
        out = screener.screen_json(intake) + b"\n"
    if args.out:
        with _open_output(args.out) as stream:
            stream.write(out)
    else:
        sys.stdout.buffer.write(out)
    return EXIT_OK


def _open_output(path: str) -> IO[bytes]:
    try:
        return open(path, "wb")
    except OSError as e:
        _fail(f"{path}: cannot write: {e.strerror or e}", EXIT_USAGE)


def _error_line(number: int, line: bytes, message: str) -> dict[str, Any]:
    import json

    ident = None
    try:
        doc = json.loads(line)
        if isinstance(doc, dict) and isinstance(doc.get("id"), str):
            ident = doc["id"]
    except (ValueError, RecursionError):
        pass
    return {"line": number, "id": ident, "error": message}


def _screen_batch(args: argparse.Namespace) -> int:
    import msgspec

    from backcare.clinical.intake import IntakeError, parse_intake

    if args.format == "text":
        _fail("--batch writes JSON lines; --format text is for a single intake", EXIT_USAGE)
    screener = _screener(args)
    stream = _open_input(args.path)
    size = None if args.path == "-" else os.fstat(stream.fileno()).st_size
    show = not args.no_progress
    out_stream = _open_output(args.out) if args.out else sys.stdout.buffer
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc="screening",
            file=sys.stderr,
            mininterval=0.25,
            leave=True,
        )
    screened = rejected = 0
    pending = 0
    buffer: list[bytes] = []
    try:
        for number, line in enumerate(stream, 1):
            pending += len(line)
            try:
                if not line.strip():
                    raise IntakeError([])
                result = screener.screen_json(parse_intake(line))
                screened += 1
            except IntakeError as e:
                rejected += 1
                message = "; ".join(map(str, e.errors)) or "empty line; expected one JSON intake"
                result = msgspec.json.encode(_error_line(number, line, message))
            buffer.append(result)
            if len(buffer) >= 1024:
                out_stream.write(b"\n".join(buffer) + b"\n")
                buffer.clear()
                if bar is not None:
                    bar.set_postfix_str(f"{screened + rejected:,} intakes", refresh=False)
                    bar.update(pending)
                    pending = 0
        if buffer:
            out_stream.write(b"\n".join(buffer) + b"\n")
        if bar is not None:
            bar.update(pending)
    finally:
        if bar is not None:
            bar.close()
        if stream is not sys.stdin.buffer:
            stream.close()
        if out_stream is not sys.stdout.buffer:
            out_stream.close()
        else:
            out_stream.flush()
    sys.stderr.write(f"backcare: screened {screened} intake(s), rejected {rejected}\n")
    return EXIT_REJECTED if rejected else EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    rb = _rule_base(args)
    if args.check:
        from backcare.clinical.check import check_rule_base

        texts = None
        if args.texts:
            if not Path(args.texts).is_dir():
                _fail(f"{args.texts}: not a folder", EXIT_USAGE)
            texts = Path(args.texts)
        report = check_rule_base(rb, texts)
        for line in report.lines(verbose=args.verbose):
            print(line)
        return EXIT_OK if report.ok else EXIT_REJECTED
    from backcare.clinical import render

    if args.format == "json":
        import msgspec

        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(render.rules_json(rb)), indent=2) + b"\n")
    elif args.format == "markdown":
        sys.stdout.write(render.rules_markdown(rb))
    else:
        sys.stdout.write(render.rules_text(rb))
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="backcare",
        description="Backcare: safety screening and planning for massage therapy of back pain.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    s = sub.add_parser(
        "screen",
        help="screen one intake (or many with --batch)",
        description="Screen an intake against the rule base. Exit 0 done, 1 input rejected, 2 usage error.",
    )
    s.add_argument("path", metavar="PATH", help="intake JSON file, or - for standard input")
    s.add_argument(
        "--format",
        choices=("text", "json"),
        help="text for a person, json for programs (default: text at a terminal, json otherwise)",
    )
    s.add_argument("--batch", action="store_true", help="PATH holds one intake per line (JSON lines)")
    s.add_argument("--out", metavar="PATH", help="write results here instead of standard output")
    s.add_argument("--no-progress", action="store_true", help="no progress bar on standard error (batch)")
    s.add_argument("--sessions", type=int, help="course length in sessions (clinic default)")
    s.add_argument("--weeks", type=int, help="course length in weeks (clinic default)")
    s.add_argument("--reassess-after", type=int, help="reassess after this session (clinic default)")
    s.add_argument("--rule-base", metavar="DIR", help="use this rule base folder instead of the shipped one")
    s.set_defaults(func=cmd_screen)
    r = sub.add_parser(
        "rules",
        help="list the rule base for review, or check it",
        description="List every rule with its condition, effect and sources, or validate the rule base.",
    )
    r.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    r.add_argument("--check", action="store_true", help="validate the rule base; exit 1 when it is broken")
    r.add_argument("--verbose", action="store_true", help="with --check: show a witness intake for every rule")
    r.add_argument("--rule-base", metavar="DIR", help="list or check this rule base folder instead of the shipped one")
    r.add_argument(
        "--texts",
        metavar="DIR",
        help="with --check: scan the client-facing texts (templates, knowledge files, email modules) under this "
        "package folder instead of the installed one",
    )
    r.set_defaults(func=cmd_rules)
    for name, text in DJANGO_COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return p


DJANGO_COMMANDS = {
    "serve": "run the clinic application with a production-grade server (waitress)",
    "demo": "load the demo clinic into an empty database",
    "backup": "back up the clinic's database and uploaded files (safe while it runs)",
    "restore": "restore a backup made by `backcare backup`",
    "fhir_export": "export clients' records as FHIR R4 bundles (one JSON file per client)",
    "fhir_import": "import clients from FHIR R4 bundles, all or nothing",
    "retention": "delete clinical records whose retention ended after an erasure request (--dry-run to list)",
    "worker": "send the outbox's emails with retries until stopped (beside `serve`)",
    "audit": "audit verify: check the audit trail's hash chain and name the first broken link",
    "manage": "run any Django management command (migrate, createsuperuser, ...)",
}


OWNER_COMMANDS = ("migrate", "backup", "restore", "grant_app_role")


def _django(argv: list[str]) -> int:
    """Clinic commands run inside Django; only they import it, so screening stays fast."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backcare.web.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    command, rest = argv[0], argv[1:]
    if command in OWNER_COMMANDS or (command == "manage" and rest[:1] and rest[0] in OWNER_COMMANDS):
        # PostgreSQL with two roles: these connect as the owner (BACKCARE_MIGRATE_DATABASE_URL), all else as the
        # application role (DATABASE_URL); see backcare.web.settings.
        os.environ["BACKCARE_DATABASE_AS_OWNER"] = "true"
    try:
        execute_from_command_line(["backcare", *(rest if command == "manage" else [command, *rest])])
    except ImproperlyConfigured as e:
        _fail(f"configuration: {e}", EXIT_USAGE)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DJANGO_COMMANDS:
        return _django(argv)
    args = parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except InputRejected as e:
        _fail(str(e))
    except BrokenPipeError:
        # The reader went away (for example `| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write("backcare: interrupted\n")
        return 130
    except MemoryError:
        _fail("out of memory reading the input", EXIT_REJECTED)
    except Exception as e:
        _fail(f"internal error: {type(e).__name__}: {e} (please report it)", EXIT_INTERNAL)
    return status


if __name__ == "__main__":
    sys.exit(main())
