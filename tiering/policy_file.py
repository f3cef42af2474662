"""``tiering.yaml``: read and validate a policy, with errors that name the file,
the line and the field. Pure apart from ``load_policy`` reading the file.

    tiers:                       # hottest first
      hot:  {zstd_level: 3, cost_per_gb_month: 0.023}
      warm: {pool: atonix.warm, zstd_level: 19, cost_per_gb_month: 0.0125}
      cold: {endpoint: "http://127.0.0.1:9000", bucket: cold, flavour: archive,
             cost_per_gb_month: 0.004, region: us-east-1, key_prefix: "atonix/",
             access_key: AKIA..., secret_key: ...}   # or neither: boto3's usual chain
    rules:
      - name: old-logs
        match: {bucket: "logs*", prefix: "2024/", tags: {team: web},
                min_size: 1MiB, content_type: "text/*"}
        transitions: [{days: 30, to: warm}, {days_since_read: 180, to: cold}]
        noncurrent: [{days: 7, to: cold, keep_newer: 2}]   # the newest 2 stay
        promote: {reads: 3, within: 1d}
      - {name: keep-hot, match: {prefix: "index/"}, pin: hot}
    mover: {mb_per_s: 64, ops_per_s: 500}

A tier's kind is its name when the name is hot, warm or cold, else ``kind:``.
Days are numbers; ``within`` also takes "90s", "30m", "12h", "2d"; sizes take
bytes or "512KiB", "64MiB", "1GB".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tiering.policy import (
    ARCHIVE,
    COLD,
    DAY,
    INSTANT,
    KINDS,
    Match,
    Policy,
    Promotion,
    Rule,
    Throttle,
    Tier,
    Transition,
)


class PolicyError(ValueError):
    """An invalid policy: the message names file, line and field."""


class _Node:
    """A YAML node with the file it came from, for errors at its line."""

    def __init__(self, node: yaml.Node, source: str, path: str) -> None:
        self.node, self.source, self.path = node, source, path

    def fail(self, message: str, field: str | None = None) -> PolicyError:
        where = ".".join(p for p in (self.path, field) if p)
        return PolicyError(f"{self.source}:{self.node.start_mark.line + 1}: {where}: {message}")

    def mapping(self, allowed: set[str]) -> dict[str, _Node]:
        if not isinstance(self.node, yaml.MappingNode):
            raise self.fail("expected a mapping")
        out: dict[str, _Node] = {}
        for key_node, value_node in self.node.value:
            key = key_node.value
            here = _Node(key_node, self.source, self.path)
            if key not in allowed:
                raise here.fail(f"unknown field {key!r} (allowed: {', '.join(sorted(allowed))})")
            if key in out:
                raise here.fail(f"field {key!r} given twice")
            out[key] = _Node(value_node, self.source, f"{self.path}.{key}" if self.path else key)
        return out

    def items(self) -> list[_Node]:
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.fail("expected a list")
        return [
            _Node(n, self.source, f"{self.path}[{i}]") for i, n in enumerate(self.node.value)
        ]

    def scalar(self) -> Any:
        if not isinstance(self.node, yaml.ScalarNode):
            raise self.fail("expected a single value")
        return yaml.safe_load(yaml.serialize(self.node))

    def text(self) -> str:
        value = self.scalar()
        if not isinstance(value, str) or not value:
            raise self.fail("expected a non-empty string")
        return value

    def number(self, minimum: float = 0.0) -> float:
        value = self.scalar()
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.fail(f"expected a number >= {minimum:g}")
        return float(value)

    def flag(self) -> bool:
        value = self.scalar()
        if not isinstance(value, bool):
            raise self.fail("expected true or false")
        return value

    def size(self) -> int:
        value = self.scalar()
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", str(value))
        if not m:
            raise self.fail("expected a size: bytes or e.g. 512KiB, 64MiB, 1GB")
        unit = m.group(2) or "B"
        scale = 1024 if "i" in unit else 1000
        power = "BKMGT".index(unit[0])
        return int(float(m.group(1)) * scale**power)

    def seconds(self) -> float:
        """A duration: a number of days, or a string with a unit (s, m, h, d)."""
        value = self.scalar()
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value) * DAY
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", str(value))
        if not m or float(m.group(1)) <= 0:
            raise self.fail("expected a duration: days, or e.g. 90s, 30m, 12h, 2d")
        return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": DAY}[m.group(2)]


def parse_policy(text: str, source: str = "tiering.yaml") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{source}{line}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if root is None:
        raise PolicyError(f"{source}: the policy is empty")
    top = _Node(root, source, "").mapping({"tiers", "rules", "mover"})
    if "tiers" not in top:
        raise _Node(root, source, "").fail("a policy needs a tiers section", "tiers")
    tiers = _tiers(top["tiers"])
    names = {t.name for t in tiers}
    rules: list[Rule] = []
    for node in top["rules"].items() if "rules" in top else []:
        rule = _rule(node, names)
        if any(r.name == rule.name for r in rules):
            raise node.fail(f"a second rule named {rule.name!r}", "name")
        rules.append(rule)
    throttle = _throttle(top["mover"]) if "mover" in top else Throttle()
    return Policy(tiers=tiers, rules=tuple(rules), throttle=throttle, source=source)


def load_policy(path: str | Path) -> Policy:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise PolicyError(f"{p}: cannot read the policy: {e.strerror}") from None
    return parse_policy(text, str(p))


_TIER_FIELDS = {
    "kind", "pool", "replicated", "zstd_level", "cost_per_gb_month", "flavour", "endpoint",
    "bucket", "pack_bytes", "region", "key_prefix", "access_key", "secret_key",
    "timeout_seconds", "attempts", "erasure",
}
_ERASURE_FIELDS = {"k", "m", "failure_domain"}
_REMOTE_FIELDS = {
    "endpoint", "bucket", "flavour", "pack_bytes", "region", "key_prefix", "access_key",
    "secret_key", "timeout_seconds", "attempts",
}


def _tiers(node: _Node) -> tuple[Tier, ...]:
    specs = _open_mapping(node)
    if not specs:
        raise node.fail("at least one tier is needed")
    tiers = []
    for name, spec_node in specs.items():
        tiers.append(_tier(name, spec_node))
    kinds = [t.kind for t in tiers]
    if kinds[0] != "hot" or kinds.count("hot") != 1:
        raise node.fail("exactly one hot tier is needed, and it comes first")
    if kinds != sorted(kinds, key=KINDS.index):
        raise node.fail("tiers go hottest first: hot, then warm, then cold")
    if kinds.count("warm") > 1:
        raise node.fail("at most one warm tier")
    flavours = [t.flavour for t in tiers if t.kind == COLD]
    if len(flavours) != len(set(flavours)):
        raise node.fail("at most one cold tier per flavour (instant, archive)")
    return tuple(tiers)


def _open_mapping(node: _Node) -> dict[str, _Node]:
    """A mapping whose keys are names the operator chooses."""
    if not isinstance(node.node, yaml.MappingNode):
        raise node.fail("expected a mapping of tier name to settings")
    out: dict[str, _Node] = {}
    for key_node, value_node in node.node.value:
        name = key_node.value
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", name or ""):
            raise _Node(key_node, node.source, node.path).fail(
                f"tier name {name!r}: lower-case letters, digits and '-', at most 32"
            )
        if name in out:
            raise _Node(key_node, node.source, node.path).fail(f"tier {name!r} given twice")
        if name == "default":  # what manifests call the hot tier, whatever its name
            raise _Node(key_node, node.source, node.path).fail("tier name 'default' is reserved")
        out[name] = _Node(value_node, node.source, f"{node.path}.{name}")
    return out


def _tier(name: str, node: _Node) -> Tier:
    fields = node.mapping(_TIER_FIELDS) if node.node.value else {}
    kind = fields["kind"].text() if "kind" in fields else name
    if kind not in KINDS:
        where = fields.get("kind", node)
        raise where.fail(f"kind must be one of {', '.join(KINDS)} (or name the tier so)")
    args: dict[str, Any] = {"name": name, "kind": kind}
    readers: dict[str, Callable[[_Node], Any]] = {
        "pool": _Node.text,
        "replicated": _Node.flag,
        "zstd_level": lambda n: int(_bounded(n, 1, 22)),
        "cost_per_gb_month": lambda n: n.number(),
        "flavour": _flavour,
        "endpoint": _Node.text,
        "bucket": _Node.text,
        "pack_bytes": _Node.size,
        "region": _Node.text,
        "key_prefix": _Node.text,
        "access_key": _Node.text,
        "secret_key": _Node.text,
        "timeout_seconds": lambda n: n.number(),
        "attempts": lambda n: int(_bounded(n, 1, 20)),
    }
    for key, field_node in fields.items():
        if key not in ("kind", "erasure"):
            args[key] = readers[key](field_node)
    remote = _REMOTE_FIELDS & fields.keys()
    if kind != COLD and remote:
        raise node.fail(f"{', '.join(sorted(remote))}: only cold tiers have these")
    if kind == COLD:
        for needed in ("endpoint", "bucket"):
            if needed not in fields:
                raise node.fail(f"a cold tier needs {needed}", needed)
        if "replicated" in fields:
            raise node.fail("a cold tier's data lives on an S3 endpoint (its pool is a catalog)")
        if ("access_key" in fields) != ("secret_key" in fields):
            raise node.fail("access_key and secret_key go together (or neither: boto3's chain)")
    if "replicated" in fields and kind != "warm" and args["replicated"] is False:
        raise fields["replicated"].fail("only a warm tier can be erasure-coded")
    if "erasure" in fields:
        if args.get("replicated", True):
            raise fields["erasure"].fail("erasure settings need replicated: false")
        args.update(_erasure(fields["erasure"]))
    return Tier(**args)


def _erasure(node: _Node) -> dict[str, Any]:
    """``erasure: {k, m, failure_domain}`` of an erasure-coded warm tier."""
    fields = node.mapping(_ERASURE_FIELDS)
    out: dict[str, Any] = {}
    if "k" in fields:
        out["erasure_k"] = int(_bounded(fields["k"], 2, 32))
    if "m" in fields:
        out["erasure_m"] = int(_bounded(fields["m"], 1, 16))
    if "failure_domain" in fields:
        domain = fields["failure_domain"].text()
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", domain):
            raise fields["failure_domain"].fail("a CRUSH bucket type: osd, host, rack, ...")
        out["failure_domain"] = domain
    return out


def _bounded(node: _Node, lo: int, hi: int) -> float:
    value = node.scalar()
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise node.fail(f"expected a whole number from {lo} to {hi}")
    return value


def _flavour(node: _Node) -> str:
    value = node.text()
    if value not in (INSTANT, ARCHIVE):
        raise node.fail(f"flavour is {INSTANT} or {ARCHIVE}")
    return value


_RULE_FIELDS = {"name", "match", "transitions", "noncurrent", "promote", "pin", "exclude"}
_MATCH_FIELDS = {"bucket", "prefix", "tags", "min_size", "max_size", "content_type"}


def _rule(node: _Node, tiers: set[str]) -> Rule:
    fields = node.mapping(_RULE_FIELDS)
    if "name" not in fields:
        raise node.fail("a rule needs a name", "name")
    args: dict[str, Any] = {"name": fields["name"].text()}
    if "match" in fields:
        args["match"] = _match(fields["match"])
    for key in ("transitions", "noncurrent"):
        if key in fields:
            noncurrent = key == "noncurrent"
            args[key] = tuple(_transition(n, tiers, noncurrent) for n in fields[key].items())
    if "promote" in fields:
        args["promote"] = _promotion(fields["promote"], tiers)
    if "pin" in fields:
        args["pin"] = _tier_name(fields["pin"], tiers)
    if "exclude" in fields:
        args["exclude"] = fields["exclude"].flag()
    actions = {"transitions", "noncurrent", "promote"} & fields.keys()
    if ("pin" in fields or args.get("exclude")) and actions:
        raise node.fail(f"pin and exclude stand alone, without {', '.join(sorted(actions))}")
    if "pin" in fields and args.get("exclude"):
        raise node.fail("a rule either pins or excludes")
    return Rule(**args)


def _match(node: _Node) -> Match:
    fields = node.mapping(_MATCH_FIELDS)
    args: dict[str, Any] = {}
    for key in ("bucket", "prefix", "content_type"):
        if key in fields:
            args[key] = str(fields[key].scalar())
    if "tags" in fields:
        tags = fields["tags"]
        if not isinstance(tags.node, yaml.MappingNode):
            raise tags.fail("expected a mapping of tag key to value")
        args["tags"] = {k.value: str(v.value) for k, v in tags.node.value}
    if "min_size" in fields:
        args["min_size"] = fields["min_size"].size()
    if "max_size" in fields:
        args["max_size"] = fields["max_size"].size()
    if args.get("max_size") is not None and args["max_size"] < args.get("min_size", 0):
        raise fields["max_size"].fail("max_size is below min_size")
    return Match(**args)


def _transition(node: _Node, tiers: set[str], noncurrent: bool = False) -> Transition:
    fields = node.mapping({"to", "days", "days_since_read", "keep_newer"})
    if "to" not in fields:
        raise node.fail("a transition names the tier it goes to", "to")
    clocks = {"days", "days_since_read"} & fields.keys()
    if len(clocks) != 1:
        raise node.fail("a transition has exactly one of days, days_since_read")
    (clock,) = clocks
    extra = {}
    if "keep_newer" in fields and not noncurrent:
        raise fields["keep_newer"].fail("keep_newer spares noncurrent versions: "
                                        "it belongs in a noncurrent transition")
    if "keep_newer" in fields:  # noncurrent: the newest N noncurrent versions stay
        extra["keep_newer"] = int(_bounded(fields["keep_newer"], 0, 100))
    return Transition(
        to=_tier_name(fields["to"], tiers), **{clock: fields[clock].number()}, **extra
    )


def _promotion(node: _Node, tiers: set[str]) -> Promotion:
    fields = node.mapping({"reads", "within", "to"})
    for needed in ("reads", "within"):
        if needed not in fields:
            raise node.fail(f"a promotion needs {needed}", needed)
    reads = int(_bounded(fields["reads"], 1, 1_000_000))
    to = _tier_name(fields["to"], tiers) if "to" in fields else ""
    return Promotion(reads=reads, within_s=fields["within"].seconds(), to=to)


def _tier_name(node: _Node, tiers: set[str]) -> str:
    name = node.text()
    if name not in tiers:
        raise node.fail(f"unknown tier {name!r} (tiers: {', '.join(sorted(tiers))})")
    return name


def _throttle(node: _Node) -> Throttle:
    fields = node.mapping({"mb_per_s", "ops_per_s"})
    args = {k: n.number(minimum=0.001) for k, n in fields.items()}
    return Throttle(**args)
