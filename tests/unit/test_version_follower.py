"""The version follower both backends use (tastebud.version_follower): swap, refuse, keep serving, retry."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tastebud.errors import ArtifactsMissingError, TastebudError
from tastebud.live.watcher import Watcher
from tastebud.version_follower import VersionFollower, VersionRefusedError


class Versions:
    """A pointer store and builder: ``broken`` versions fail to build, ``failing`` ones fail the smoke test."""

    def __init__(self) -> None:
        self.pointer: str | Exception = "v1"
        self.broken: dict[str, BaseException] = {}
        self.failing: set[str] = set()
        self.built: list[str] = []
        self.served = "served:v1"
        self.now = 0.0

    def read(self) -> str:
        if isinstance(self.pointer, Exception):
            raise self.pointer
        return self.pointer

    def build(self, name: str) -> str:
        self.built.append(name)
        if name in self.broken:
            raise self.broken[name]
        return f"served:{name}"

    def smoke_test(self, served: str) -> None:
        if served.removeprefix("served:") in self.failing:
            raise RuntimeError("smoke test: no finite-scored candidates")

    def install(self, served: str) -> None:
        self.served = served

    def follower(self, **options: Any) -> VersionFollower[str, str]:
        return VersionFollower(read_pointer=self.read, build=self.build, install=self.install, serving="v1",
                               refusable=(TastebudError, OSError, RuntimeError), smoke_test=self.smoke_test,
                               clock=lambda: self.now, **options)


def test_a_new_pointer_is_built_tested_and_swapped_in_once() -> None:
    versions = Versions()
    follower = versions.follower()
    assert follower.follow() is None and versions.built == []  # the served pointer: nothing to do
    versions.pointer = "v2"
    swap = follower.follow()
    assert swap is not None and (swap.pointer, swap.previous, swap.served) == ("v2", "v1", "served:v2")
    assert versions.served == "served:v2" and follower.serving == "v2" and swap.build_ms >= 0
    assert follower.follow() is None and follower.swap_to("v2") is None and versions.built == ["v2"]


@pytest.mark.parametrize("failure", ["build", "smoke", "bug"])
def test_a_failing_version_is_refused_the_old_one_serves_and_the_watcher_does_not_retry_it(
        failure: str, caplog: pytest.LogCaptureFixture) -> None:
    versions = Versions()
    if failure == "build":
        versions.broken["v2"] = OSError("ranker.onnx: truncated")
    elif failure == "bug":
        versions.broken["v2"] = KeyError("retrieval")  # not a refusable error: logged with its stack, still refused
    else:
        versions.failing.add("v2")
    follower = versions.follower()
    versions.pointer = "v2"
    with caplog.at_level(logging.ERROR, logger="tastebud.version_follower"):
        assert follower.follow() is None
    assert versions.served == "served:v1" and follower.serving == "v1"
    assert follower.refusal("v2") is not None and "refusing version v2" in caplog.text
    assert any(r.exc_info for r in caplog.records) == (failure == "bug")
    assert follower.follow() is None and versions.built == ["v2"]  # not rebuilt every tick
    with pytest.raises(VersionRefusedError, match="v2"):  # the admin route asks again, explicitly: it is tried
        follower.swap_to("v2")
    assert versions.built == ["v2", "v2"]


def test_a_refusal_expires_after_retry_refused_s_where_failures_may_be_transient() -> None:
    versions = Versions()
    versions.broken["v2"] = OSError("S3: SlowDown")
    follower = versions.follower(retry_refused_s=60.0)
    versions.pointer = "v2"
    assert follower.follow() is None
    versions.now = 30.0
    assert follower.follow() is None and versions.built == ["v2"]
    del versions.broken["v2"]  # the hiccup passed
    versions.now = 61.0
    assert follower.follow() is not None and versions.served == "served:v2" and follower.refusal("v2") is None


def test_an_unreadable_pointer_keeps_the_version_and_is_logged_once_per_reason(caplog: pytest.LogCaptureFixture,
                                                                              ) -> None:
    versions = Versions()
    follower = versions.follower()
    versions.pointer = ArtifactsMissingError("no CURRENT under /artifacts")
    with caplog.at_level(logging.WARNING, logger="tastebud.version_follower"):
        assert follower.follow() is None and follower.follow() is None
    assert caplog.text.count("version pointer unreadable") == 1 and versions.served == "served:v1"


def test_the_watcher_outlives_a_bug_in_a_task_and_runs_the_others_next_tick(caplog: pytest.LogCaptureFixture,
                                                                           ) -> None:
    calls: list[str] = []

    def buggy() -> None:
        calls.append("buggy")
        raise KeyError("bug")

    watcher = Watcher([buggy, lambda: calls.append("after")], interval_s=60)
    with caplog.at_level(logging.ERROR, logger="tastebud.live.watcher"):
        watcher.tick()
        watcher.tick()
    assert calls == ["buggy", "buggy"] and caplog.records[0].exc_info is not None
