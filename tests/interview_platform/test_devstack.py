"""The dev stack's supervision: what `make demo` does when one of its processes dies."""

from __future__ import annotations

import sys
import time

import pytest

from interview_platform import devstack


def test_a_child_that_exits_is_started_again_and_one_that_keeps_exiting_stops_the_stack(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(devstack, "LOG_DIR", tmp_path)
    stack = devstack.Stack()
    try:
        stack.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
        first = stack.children["sleeper"].process
        first.kill()
        first.wait()
        assert stack.restart_exited() == ["sleeper"]
        assert stack.children["sleeper"].process.pid != first.pid
        assert stack.children["sleeper"].process.poll() is None

        stack.start("crasher", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"])
        with pytest.raises(devstack.StackError, match=r"crasher exited 3 times[\s\S]*boom"):
            for _ in range(20):
                time.sleep(0.3)
                stack.restart_exited(max_restarts=2)
        processes = [child.process for child in stack.children.values()]
    finally:
        stack.stop()
    assert processes and all(process.poll() is not None for process in processes)
