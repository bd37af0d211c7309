"""Command-line options from a config dataclass: every field becomes ``--field-name`` with its default."""

from __future__ import annotations

import argparse
from dataclasses import fields

_TYPES = {"int": int, "int | None": int, "float": float, "float | None": float}


def _bool(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


def parse_config(cls, argv=None, doc: str | None = None, choices: dict | None = None):
    """``cls(**options)`` read from ``argv``; ``doc`` is shown by ``--help``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(cls):
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool) or str(f.type) == "bool":
            parser.add_argument(flag, default=f.default, type=_bool, metavar="BOOL")
        else:
            parser.add_argument(flag, default=f.default, type=_TYPES.get(str(f.type), str),
                                choices=(choices or {}).get(f.name))
    return cls(**vars(parser.parse_args(argv)))
