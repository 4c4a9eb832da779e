"""`pikube master`'s stream flags: parsed once into MasterSettings, the idle timeout spelt as the kubelet's."""

from __future__ import annotations

import argparse

import pytest

from pikube.cli import master


def settings(*argv: str) -> master.MasterSettings:
    parser = argparse.ArgumentParser()
    master.register(parser.add_subparsers())
    return master.settings_from(parser.parse_args(["master", *argv]))


def test_defaults_are_the_kubelets() -> None:
    s = settings()
    assert s.stream_idle_timeout == 4 * 3600 and s.max_streams_per_node == 64


@pytest.mark.parametrize(("text", "seconds"), [("4h", 14400), ("4h0m0s", 14400), ("15m", 900), ("90s", 90),
                                                ("90", 90), ("1.5m", 90), ("1h30m", 5400)])
def test_idle_timeout_durations(text: str, seconds: float) -> None:
    assert settings("--streaming-connection-idle-timeout", text).stream_idle_timeout == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "0s", "4d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(SystemExit):
        settings("--streaming-connection-idle-timeout", text)


def test_stream_cap() -> None:
    assert settings("--max-streams-per-node", "3").max_streams_per_node == 3
