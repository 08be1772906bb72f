"""The ``smg`` command: run, validate, launch, sim."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from smg import launch


def _cmd_validate(args: argparse.Namespace) -> int:
    from smg.config.errors import ConfigError
    from smg.runtime.manager import load_and_check

    bad = 0
    for f in args.files:
        try:
            load_and_check(Path(f))
        except ConfigError as exc:
            bad += 1
            for issue in exc.issues:
                print(issue, file=sys.stderr)
        except OSError as exc:
            bad += 1
            print(f"{f}: cannot read: {exc.strerror}", file=sys.stderr)
        else:
            print(f"{f}: ok")
    return 1 if bad else 0


def _cmd_run(args: argparse.Namespace) -> int:
    from smg.config.errors import ConfigError
    from smg.observability.logs import setup_logging
    from smg.runtime.manager import load_and_check
    from smg.runtime.process import run

    path = Path(args.config)
    try:
        cfg = load_and_check(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 1
    setup_logging(cfg.logging.level, cfg.logging.json)
    return run(cfg, path)


def _cmd_launch(args: argparse.Namespace) -> int:
    from smg.config.errors import ConfigError
    from smg.config.loader import config_from_dict
    from smg.observability.logs import setup_logging
    from smg.runtime.checks import config_issues
    from smg.runtime.process import run

    doc = launch.config_doc(args)
    if args.print_config:
        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False))
        return 0
    try:
        cfg = config_from_dict(doc, "<launch>")
        issues = config_issues(cfg)
        if issues:
            raise ConfigError(issues)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    setup_logging(cfg.logging.level, cfg.logging.json)
    return run(cfg, None)


def _cmd_sim(args: argparse.Namespace) -> int:
    from smg.sim import cli as sim_cli

    return sim_cli.main(args)


def parser() -> argparse.ArgumentParser:
    """The full command-line grammar."""
    p = argparse.ArgumentParser(prog="smg", description="SMG inference gateway")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the gateway from a config file")
    r.add_argument("-c", "--config", required=True, help="YAML config file")
    r.set_defaults(func=_cmd_run)
    v = sub.add_parser("validate", help="check config files; exit 1 listing every error")
    v.add_argument("files", nargs="+")
    v.set_defaults(func=_cmd_validate)
    la = sub.add_parser("launch", help="quick start from flags (Shepherd SMG flag names)")
    launch.add_arguments(la)
    la.set_defaults(func=_cmd_launch)
    s = sub.add_parser("sim", help="run simulated inference engines")
    from smg.sim import cli as sim_cli

    sim_cli.add_arguments(s)
    s.set_defaults(func=_cmd_sim)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``smg`` console script."""
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
