"""``eportal-sim``: register a simulated fleet, drive its check-ins, or load any URL.

Exit status: 0 all went well; 1 transport errors, unexpected answers, refused registrations or
an unreachable portal; 2 bad options; 130 interrupted (the partial summary is printed).
"""
from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .client import (
    MAX_CONCURRENCY,
    UnreachableError,
    UrlError,
    basic_auth,
    check_reachable,
    parse_url,
    run_requests,
)
from .fleet import StateError, generate_fleet, load_state, save_state
from .scenarios import EXPECTED, MODES, REGISTER_CODES, checkin_fleet, register_fleet

PROG = "eportal-sim"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_range(low: int, high: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range ({low}..{high if high is not None else ''})")
        return value
    return parse


def _float_min(low: float, *, strict: bool = False, high: float | None = None):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value != value or (value <= low if strict else value < low) or (high is not None and value > high):
            bound = f"> {low:g}" if strict else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"{text} must be {bound}" + (f" and <= {high:g}" if high is not None else ""))
        return value
    return parse


def _load_options(p: argparse.ArgumentParser, *, url_required: bool = True) -> None:
    p.add_argument("--url", required=url_required, metavar="URL",
                   help="the portal, http[s]://HOST[:PORT][/PREFIX]" + ("" if url_required else
                                                                       " (default: the URL the fleet was registered with)"))
    p.add_argument("--concurrency", "-c", type=_int_range(1, MAX_CONCURRENCY), default=16, metavar="C",
                   help=f"worker threads, each with one kept-alive connection (1..{MAX_CONCURRENCY}, default 16)")
    p.add_argument("--rate", type=_float_min(0), default=0.0, metavar="R",
                   help="at most R requests per second in all (0 = as fast as possible, the default)")
    p.add_argument("--timeout", type=_float_min(0, strict=True), default=30.0, metavar="S",
                   help="socket timeout per request in seconds (default 30)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr (it only shows on a terminal anyway)")


def _amount_options(p: argparse.ArgumentParser, default_help: str) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--requests", "-r", type=_int_range(1), metavar="N", help=f"send N requests ({default_help})")
    g.add_argument("--duration", "-d", type=_float_min(0, strict=True), metavar="S", help="send for S seconds")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="A simulated fleet of KernelCare agents for eportal (tests and bench).")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("register", help="register N simulated servers and save the fleet",
                       description="Register N simulated servers (POST register_server.json) and save them to --state.")
    _load_options(p)
    p.add_argument("--key", required=True, help="the registration key")
    p.add_argument("-n", "--count", dest="n", type=_int_range(1, 10_000_000), required=True, metavar="N",
                   help="how many servers to register (>= 1)")
    p.add_argument("--state", default="fleet.json", metavar="PATH", help="fleet state file to write (default fleet.json)")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated server info (default 1)")
    p.add_argument("--tags-ratio", type=_float_min(0, high=1), default=0.5, metavar="F",
                   help="share of servers that carry tags, 0..1 (default 0.5)")

    p = sub.add_parser("checkin", help="drive check-ins of a registered fleet",
                       description="Check-ins of the fleet in --state, server after server: "
                                   "mode checkin = POST checkin with the info; mode latest = GET /<kernel_id>/latest.v2 "
                                   "with HTTP Basic user = server_id (404 = no patches yet, a valid answer).")
    _load_options(p, url_required=False)
    p.add_argument("--state", default="fleet.json", metavar="PATH", help="fleet state file (default fleet.json)")
    _amount_options(p, "default: one per server")
    p.add_argument("--mode", choices=MODES, default="checkin", help="checkin (default) or latest")
    p.add_argument("--send-info", action="store_true", help="mode latest: add ?info=<base64 JSON> with the server's info")
    p.add_argument("--seed", type=int, default=1, help="seed of the info drift between check-ins (default 1)")

    p = sub.add_parser("bare", help="GET any URL with the same client (bench baseline, files, one agent)",
                       description="GET the URL (path and query included) with the same client machinery; "
                                   "every body is read to its end. Any answer below 400 counts as success.")
    _load_options(p)
    _amount_options(p, "default 1000")
    p.add_argument("--basic", metavar="USER[:PASSWORD]",
                   help="send HTTP Basic credentials; an agent is USER = its server_id, no password "
                        "(e.g. GET /<kernel_id>/<level>/kpatch.bin as that server)")
    return parser


def _summary(command: str, url: str, stats, failures: int, extra: dict, as_json: bool, title: str) -> str:
    if as_json:
        return json.dumps({"command": command, "url": url, "ok": failures == 0 and not stats.interrupted,
                           "failures": failures, **extra, **stats.to_dict()})
    lines = [stats.format_text(title)]
    for name, value in extra.items():
        if name in ("mode",):
            continue
        if isinstance(value, dict):
            value = "  ".join(f"{k}={v}" for k, v in value.items()) or "none"
        lines.append(f"  {name + ':':<12} {value}")
    if failures:
        lines.append(f"  FAILURES:    {failures}")
    return "\n".join(lines)


def _fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _exit_code(stats, failures: int) -> int:
    return 130 if stats.interrupted else (1 if failures else 0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:  # outside a run (a run reports its partial counts itself)
        return _fail("interrupted", 130)


def _run(args) -> int:
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        if args.command == "checkin":
            servers, meta = load_state(args.state)
            if not servers:
                return _fail(f"{args.state}: the fleet is empty")
            url = args.url or meta.get("url")
            if not url:
                return _fail(f"{args.state} names no portal: give --url", 2)
        else:
            url = args.url
        endpoint = parse_url(url)
        check_reachable(endpoint, timeout=min(args.timeout, 10.0))
    except UrlError as exc:
        return _fail(str(exc), 2)
    except (StateError, UnreachableError) as exc:
        return _fail(str(exc))

    opts = {"concurrency": args.concurrency, "rate": args.rate, "timeout": args.timeout, "progress": progress}
    if args.command == "register":
        infos = generate_fleet(args.n, args.seed, tags_ratio=args.tags_ratio)
        result = register_fleet(endpoint, args.key, infos, **opts)
        stats = result.stats
        if result.servers:
            try:
                save_state(args.state, result.servers, url=str(endpoint), seed=args.seed, tags_ratio=args.tags_ratio)
            except OSError as exc:
                return _fail(f"cannot write {args.state}: {exc.strerror or exc}")
        codes = {f"{k} ({REGISTER_CODES.get(int(k), '?')})" if k.isdigit() else k: v
                 for k, v in sorted(result.codes.items())}
        failures = result.failed
        extra = {"registered": len(result.servers), "codes": codes if not args.json else dict(result.codes),
                 "state": args.state if result.servers else None}
        print(_summary("register", str(endpoint), stats, failures, extra, args.json,
                       f"eportal-sim register: {len(result.servers)} of {args.n} servers registered at {endpoint}"))
        if not result.servers and not stats.interrupted:
            print(f"{PROG}: error: no server was registered; {args.state} left as it was", file=sys.stderr)
        return _exit_code(stats, failures)

    if args.command == "checkin":
        stats = checkin_fleet(endpoint, servers, mode=args.mode, requests=args.requests, duration=args.duration,
                              seed=args.seed, send_info=args.send_info, **opts)
        failures = stats.error_count + stats.unexpected(EXPECTED[args.mode])
        extra = {"mode": args.mode, "servers": len(servers)}
        print(_summary("checkin", str(endpoint), stats, failures, extra, args.json,
                       f"eportal-sim checkin ({args.mode}): {len(servers)} servers at {endpoint}"))
        if args.mode == "checkin" and stats.status.get(404):
            print(f"{PROG}: {stats.status[404]} check-ins answered 404: the portal does not know these servers"
                  f" (unknown-server); register the fleet again", file=sys.stderr)
        return _exit_code(stats, failures)

    # bare
    requests = args.requests if args.requests or args.duration else 1000
    headers = {"Authorization": basic_auth(args.basic)} if args.basic else None
    stats = run_requests(endpoint, requests=requests, duration=args.duration, headers=headers, **opts)
    failures = stats.error_count + stats.unexpected(lambda s: s < 400)
    target = f"{endpoint.scheme}://{endpoint.netloc}{endpoint.own_target}"
    print(_summary("bare", target, stats, failures, {}, args.json, f"eportal-sim bare: GET {target}"))
    return _exit_code(stats, failures)
