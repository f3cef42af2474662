"""``tiering.reload.PolicyWatcher``: a changed policy file comes into force, a broken one
leaves the last good policy in force and says why, file and line included."""

from __future__ import annotations

from tiering.policy_file import load_policy
from tiering.reload import PolicyWatcher

GOOD = "tiers:\n  hot: {}\n  warm: {zstd_level: 9}\nrules:\n  - {name: a, pin: warm}\n"
BETTER = "tiers:\n  hot: {}\n  warm: {zstd_level: 12}\nrules:\n  - {name: b, pin: hot}\n"
BROKEN = "tiers:\n  hot: {}\nrules:\n  - {name: a, pin: tepid}\n"


def watcher(tmp_path, text: str = GOOD):
    path = tmp_path / "tiering.yaml"
    path.write_text(text)
    w = PolicyWatcher(path, load_policy(str(path)))
    got = []
    w.subscribe(got.append)
    return path, w, got


def test_an_unchanged_file_is_not_reloaded(tmp_path):
    _, w, got = watcher(tmp_path)
    assert not w.check() and got == [] and w.error is None


def test_a_changed_file_comes_into_force(tmp_path):
    path, w, got = watcher(tmp_path)
    path.write_text(BETTER)
    assert w.check()
    assert [r.name for r in w.policy.rules] == ["b"] and got == [w.policy]
    assert w.policy.tier("warm").zstd_level == 12 and w.reloads == 1


def test_a_broken_file_keeps_the_last_good_policy_and_says_why(tmp_path):
    path, w, got = watcher(tmp_path)
    before = w.policy
    path.write_text(BROKEN)
    assert not w.check()
    assert w.policy is before and got == []
    assert f"{path}:4: rules[0].pin: unknown tier 'tepid'" in w.error
    assert not w.check()  # the same broken file: nothing new to say
    path.write_text(BETTER)
    assert w.check() and w.error is None


def test_a_vanished_file_keeps_the_policy(tmp_path):
    path, w, _ = watcher(tmp_path)
    path.unlink()
    assert not w.check()
    assert "not reloaded" in w.error and [r.name for r in w.policy.rules] == ["a"]


def test_a_subscriber_that_refuses_keeps_the_old_policy(tmp_path):
    path, w, _ = watcher(tmp_path)

    def refuse(policy):
        raise ValueError("the hot tier cannot change its pool")

    w.subscribe(refuse)
    path.write_text(BETTER)
    assert not w.check()
    assert "hot tier cannot change" in w.error and [r.name for r in w.policy.rules] == ["a"]
