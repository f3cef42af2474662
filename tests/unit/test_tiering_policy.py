"""The tiering policy core: the YAML file's validation (file, line, field) and
``Policy.place`` over a table of objects and instants. No I/O."""

from __future__ import annotations

import pytest

from engine import ErasureCode
from tiering.policy import DAY, ObjectFacts, UnknownStorageClass, default_policy
from tiering.policy_file import PolicyError, load_policy, parse_policy
from tiering.service import engine_tiers

POLICY = """\
tiers:
  hot:  {zstd_level: 3, cost_per_gb_month: 0.023}
  warm: {pool: atonix.warm, zstd_level: 19, cost_per_gb_month: 0.0125}
  cold: {endpoint: "http://127.0.0.1:9000", bucket: cold, flavour: archive,
         cost_per_gb_month: 0.004}
rules:
  - {name: keep-index-hot, match: {prefix: "index/"}, pin: hot}
  - {name: frozen, match: {bucket: "frozen-*"}, exclude: true}
  - name: logs
    match: {bucket: "logs*", tags: {team: web}, min_size: 1KiB, content_type: "text/*"}
    transitions: [{days: 30, to: warm}, {days_since_read: 180, to: cold}]
    noncurrent: [{days: 7, to: cold}]
    promote: {reads: 3, within: 1d}
  - name: everything-else
    transitions: [{days: 90, to: warm}]
mover: {mb_per_s: 32, ops_per_s: 100}
"""

T0 = 1_700_000_000.0


def facts(**kw) -> ObjectFacts:
    base = dict(
        bucket="logs-a", key="2024/app.log", size=4096, tier="hot", written=T0,
        content_type="text/plain", tags={"team": "web"},
    )
    base.update(kw)
    return ObjectFacts(**base)


@pytest.fixture(scope="module")
def policy():
    return parse_policy(POLICY, "t.yaml")


def test_the_file_reads_into_tiers_rules_and_throttle(policy):
    assert [t.name for t in policy.tiers] == ["hot", "warm", "cold"]
    assert policy.tier("warm").zstd_level == 19 and policy.tier("warm").pool == "atonix.warm"
    assert policy.tier("cold").flavour == "archive"
    assert [r.name for r in policy.rules] == ["keep-index-hot", "frozen", "logs", "everything-else"]
    logs = policy.rules[2]
    assert logs.match.min_size == 1024 and logs.promote.within_s == DAY
    assert (policy.throttle.mb_per_s, policy.throttle.ops_per_s) == (32, 100)


@pytest.mark.parametrize(
    ("case", "at_days", "expect"),
    [
        # (facts overrides, days after the write, (tier, rule, next tier, next at in days))
        ({}, 1, ("hot", "logs", "warm", 30)),
        ({}, 30, ("warm", "logs", "cold", 180)),  # never read: read clock starts at the write
        ({"last_read": T0 + 100 * DAY}, 200, ("warm", "logs", "cold", 280)),
        ({}, 181, ("cold", "logs", None, None)),  # the coldest transition that holds wins
        ({"tier": "cold"}, 31, ("cold", "logs", None, None)),  # never back up by transition
        ({"recent_reads": 3, "tier": "warm"}, 40, ("hot", "logs", None, None)),  # promoted
        ({"recent_reads": 3}, 40, ("hot", "logs", None, None)),  # kept hot, not demoted
        ({"recent_reads": 2}, 40, ("warm", "logs", "cold", 180)),
        ({"noncurrent_since": T0 + 10 * DAY}, 12, ("hot", "logs", "cold", 17)),
        ({"noncurrent_since": T0 + 10 * DAY}, 17, ("cold", "logs", None, None)),
        ({"key": "index/a"}, 400, ("hot", "keep-index-hot", None, None)),
        ({"key": "index/a", "tier": "cold"}, 1, ("hot", "keep-index-hot", None, None)),
        ({"bucket": "frozen-x", "tier": "warm"}, 400, ("warm", "frozen", None, None)),
        ({"tags": {"team": "db"}}, 100, ("warm", "everything-else", None, None)),  # tag differs
        ({"size": 100}, 100, ("warm", "everything-else", None, None)),  # below min_size
        ({"content_type": "image/png"}, 10, ("hot", "everything-else", "warm", 90)),
    ],
)
def test_placement(policy, case, at_days, expect):
    f = facts(**case)
    got = policy.place(f, T0 + at_days * DAY)
    tier, rule, next_tier, next_days = expect
    assert (got.tier, got.rule, got.next_tier) == (tier, rule, next_tier), got.reason
    assert got.next_at == (None if next_days is None else T0 + next_days * DAY)
    assert got.moves(f) == (tier != f.tier)
    assert got.reason


def test_no_rule_keeps_data_where_it_was_written():
    got = default_policy().place(facts(tier="warm"), T0 + 1000 * DAY)
    assert (got.tier, got.rule) == ("warm", None)


@pytest.mark.parametrize(
    ("storage_class", "tier"),
    [("STANDARD", "hot"), ("INTELLIGENT_TIERING", "hot"), ("REDUCED_REDUNDANCY", "hot"),
     ("STANDARD_IA", "warm"), ("ONEZONE_IA", "warm"), ("GLACIER", "cold"),
     ("DEEP_ARCHIVE", "cold")],
)
def test_storage_classes_map_to_tiers(policy, storage_class, tier):
    assert policy.tier_for_class(storage_class).name == tier


def test_classes_without_a_tier_are_refused(policy):
    with pytest.raises(UnknownStorageClass, match="GLACIER_IR"):
        policy.tier_for_class("GLACIER_IR")  # only an archive cold tier here
    with pytest.raises(UnknownStorageClass):
        policy.tier_for_class("SUPERFAST")
    default = default_policy()
    assert default.tier_for_class("STANDARD_IA").name == "warm"
    for cold in ("GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"):
        with pytest.raises(UnknownStorageClass):
            default.tier_for_class(cold)


def test_a_cold_tier_names_its_endpoint_credentials_and_catalog_pool():
    text = ("tiers:\n  hot: {}\n  cold: {endpoint: 'http://s3:9000', bucket: b, pool: cat,\n"
            "    region: eu-west-1, key_prefix: gw1/, access_key: AK, secret_key: SK,\n"
            "    timeout_seconds: 5, attempts: 3, pack_bytes: 32MiB}\n")
    cold = parse_policy(text, "p.yaml").tier("cold")
    assert (cold.endpoint, cold.bucket, cold.pool, cold.region, cold.key_prefix) == (
        "http://s3:9000", "b", "cat", "eu-west-1", "gw1/")
    assert (cold.access_key, cold.secret_key, cold.timeout_seconds, cold.attempts) == (
        "AK", "SK", 5, 3)
    assert cold.pack_bytes == 32 * 1024 * 1024


def test_an_erasure_coded_warm_tier_names_its_layout():
    text = ("tiers:\n  hot: {}\n  warm:\n    replicated: false\n"
            "    erasure: {k: 4, m: 2, failure_domain: osd}\n")
    warm = parse_policy(text, "p.yaml").tier("warm")
    assert (warm.replicated, warm.erasure_k, warm.erasure_m, warm.failure_domain) == (
        False, 4, 2, "osd")
    plain = parse_policy("tiers: {hot: {}, warm: {replicated: false}}\n", "p.yaml").tier("warm")
    assert (plain.erasure_k, plain.erasure_m, plain.failure_domain) == (2, 1, "host")
    hot, warm_settings = engine_tiers(parse_policy(text, "p.yaml"))
    assert hot.erasure is None and warm_settings.write_once
    assert warm_settings.erasure == ErasureCode(4, 2, "osd")


def test_tiers_report_their_storage_class(policy):
    assert [t.storage_class for t in policy.tiers] == ["STANDARD", "STANDARD_IA", "GLACIER"]


BAD = [
    ("tiers: {hot: {}}\nrules:\n  - {name: a, pin: tepid}\n", 3, "rules[0].pin", "unknown tier"),
    ("tiers: {hot: {}}\nmover: {mb_per_sec: 3}\n", 2, "mover", "unknown field 'mb_per_sec'"),
    ("tiers:\n  hot: {}\n  cold: {bucket: b}\n", 3, "tiers.cold.endpoint", "needs endpoint"),
    ("tiers:\n  warm: {}\n  hot: {}\n", 2, "tiers", "hot tier"),
    ("tiers:\n  hot: {}\n  cold: {endpoint: e, bucket: b}\n  warm: {}\n", 2, "tiers",
     "hottest first"),
    ("tiers: {hot: {zstd_level: 40}}\n", 1, "tiers.hot.zstd_level", "from 1 to 22"),
    ("tiers: {hot: {}}\nrules:\n  - {name: a}\n  - {name: a}\n", 4, "rules[1].name",
     "second rule"),
    ("tiers: {hot: {}}\nrules:\n  - name: a\n    match: {min_size: lots}\n", 4,
     "rules[0].match.min_size", "expected a size"),
    ("tiers: {hot: {}}\nrules:\n  - name: a\n    promote: {reads: 2, within: soon}\n", 4,
     "rules[0].promote.within", "duration"),
    ("tiers: {hot: {}}\nrules:\n  - name: a\n    pin: hot\n    transitions: []\n", 3,
     "rules[0]", "stand alone"),
    ("tiers: {hot: {}}\nrules:\n  - name: a\n    transitions: [{to: hot}]\n", 4,
     "rules[0].transitions[0]", "exactly one of days"),
    ("tiers: {hot: {}, warm: {endpoint: x}}\n", 1, "tiers.warm", "only cold tiers"),
    ("tiers: {Hot!: {}}\n", 1, "tiers", "tier name"),
    ("tiers: {hot: {}, warm: {}}\nrules:\n  - name: a\n"
     "    transitions: [{days: 1, to: warm, keep_newer: 1}]\n", 4,
     "rules[0].transitions[0].keep_newer", "belongs in a noncurrent transition"),
    ("tiers: {hot: {replicated: false}}\n", 1, "tiers.hot.replicated",
     "only a warm tier can be erasure-coded"),
    ("tiers: {hot: {}, warm: {erasure: {k: 2}}}\n", 1, "tiers.warm.erasure",
     "need replicated: false"),
    ("tiers: {hot: {}, warm: {replicated: false, erasure: {k: 1}}}\n", 1,
     "tiers.warm.erasure.k", "from 2 to 32"),
    ("tiers: {hot: {}, warm: {replicated: false, erasure: {j: 1}}}\n", 1,
     "tiers.warm.erasure", "unknown field 'j'"),
    ("tiers: {hot: {}, warm: {replicated: false, erasure: {failure_domain: 'a b'}}}\n", 1,
     "tiers.warm.erasure.failure_domain", "CRUSH bucket type"),
    ("tiers: {hot: {}, cold: {endpoint: e, bucket: b, access_key: k}}\n", 1, "tiers.cold",
     "go together"),
    ("tiers: {hot: {}, cold: {endpoint: e, bucket: b, replicated: true}}\n", 1, "tiers.cold",
     "S3 endpoint"),
    ("tiers: {hot: {}, cold: {endpoint: e, bucket: b, attempts: 0}}\n", 1,
     "tiers.cold.attempts", "from 1 to 20"),
    ("rules: []\n", 1, "tiers", "needs a tiers section"),
    ("tiers: [hot]\n", 1, "tiers", "mapping"),
]


@pytest.mark.parametrize(("text", "line", "field", "message"), BAD)
def test_invalid_policies_name_file_line_and_field(text, line, field, message):
    with pytest.raises(PolicyError) as e:
        parse_policy(text, "p.yaml")
    assert str(e.value).startswith(f"p.yaml:{line}: {field}: "), str(e.value)
    assert message in str(e.value)


def test_broken_yaml_and_missing_files(tmp_path):
    with pytest.raises(PolicyError, match=r"^p.yaml:2: not valid YAML"):
        parse_policy("tiers:\n  hot: {a: [}\n", "p.yaml")
    with pytest.raises(PolicyError, match="the policy is empty"):
        parse_policy("", "p.yaml")
    with pytest.raises(PolicyError, match="cannot read the policy"):
        load_policy(tmp_path / "absent.yaml")
    path = tmp_path / "tiering.yaml"
    path.write_text(POLICY)
    assert load_policy(path).source == str(path)


def test_lifecycle_rules_come_first_for_their_bucket_only(policy):
    from engine import LifecycleRule
    from tiering.lifecycle_rules import abort_after_days, lifecycle_policy

    rules = [
        LifecycleRule("ia", prefix="2024/", transitions=((30, "STANDARD_IA"),),
                      expiration_days=400, noncurrent_expiration_days=10,
                      newer_noncurrent_versions=1),
        LifecycleRule("uploads", abort_incomplete_days=7),  # no object action: not a rule
        LifecycleRule("off", enabled=False, expiration_days=1),
        # No tier serves GLACIER_IR here: the transition drops, and with it the rule.
        LifecycleRule("cold", transitions=((60, "GLACIER_IR"),)),
    ]
    mine = lifecycle_policy(policy, "logs-a", rules)
    assert [r.name for r in mine.bucket_rules] == ["lifecycle ia"]
    assert mine.rules == policy.rules
    got = mine.place(facts(), T0 + 31 * DAY)
    assert (got.tier, got.rule) == ("warm", "lifecycle ia")
    assert mine.place(facts(), T0 + 401 * DAY).expire
    other = mine.place(facts(bucket="logs-b"), T0 + 401 * DAY)
    assert other.rule == "logs" and not other.expire  # another bucket: the file's rules
    newest = facts(noncurrent_since=T0 + DAY, noncurrent_rank=0)
    older = facts(noncurrent_since=T0 + DAY, noncurrent_rank=1)
    assert not mine.place(newest, T0 + 20 * DAY).expire  # one newer noncurrent kept
    assert mine.place(older, T0 + 20 * DAY).expire
    assert not mine.place(older, T0 + 5 * DAY).expire
    assert abort_after_days(rules) == [("", 7.0)]
    assert lifecycle_policy(policy, "x", [rules[1], rules[2]]) is policy


def test_every_matching_lifecycle_rule_applies_as_in_s3(policy):
    from engine import LifecycleRule
    from tiering.lifecycle_rules import lifecycle_policy

    rules = [
        LifecycleRule("move", transitions=((30, "STANDARD_IA"),)),
        LifecycleRule("expire", prefix="2024/", expiration_days=100),
        LifecycleRule("old-versions", noncurrent_expiration_days=5),
    ]
    mine = lifecycle_policy(policy, "logs-a", rules)
    got = mine.place(facts(), T0 + 31 * DAY)
    assert (got.tier, got.rule) == ("warm", "lifecycle move + lifecycle expire")
    assert got.next_at is None and not got.expire
    assert mine.place(facts(), T0 + 101 * DAY).expire  # the other rule's expiry holds too
    # A noncurrent version: only the rule acting on noncurrent versions decides.
    old = mine.place(facts(noncurrent_since=T0), T0 + 6 * DAY)
    assert old.expire and old.rule == "lifecycle old-versions"
    # A key no lifecycle rule moves or expires: the policy file's rules decide.
    other = mine.place(facts(key="index/x"), T0 + 400 * DAY)
    assert other.rule == "lifecycle move"
    only_noncurrent = lifecycle_policy(policy, "logs-a", [rules[2]])
    assert only_noncurrent.place(facts(key="index/x"), T0).rule == "keep-index-hot"


def test_a_noncurrent_transition_spares_the_newest_versions_it_is_told_to(policy):
    from engine import LifecycleRule
    from tiering.lifecycle_rules import lifecycle_policy

    rule = LifecycleRule("nc", noncurrent_transitions=((30, "STANDARD_IA", 2),))
    mine = lifecycle_policy(policy, "logs-a", [rule])
    at = T0 + 40 * DAY
    ranks = {rank: mine.place(facts(noncurrent_since=T0, noncurrent_rank=rank), at).tier
             for rank in range(4)}
    assert ranks == {0: "hot", 1: "hot", 2: "warm", 3: "warm"}  # two newest stay


def test_a_policy_file_noncurrent_transition_may_keep_newer_versions():
    text = ("tiers:\n  hot: {}\n  warm: {}\nrules:\n  - name: nc\n"
            "    noncurrent: [{days: 7, to: warm, keep_newer: 2}]\n")
    (rule,) = parse_policy(text, "p.yaml").rules
    assert rule.noncurrent[0].keep_newer == 2
