"""Record the Celery tasks the code publishes (through core.tasks) instead of sending them."""

from __future__ import annotations

from typing import Any


class TaskRecorder:
    """Stand in for core.tasks.publish; optionally keep only the tasks of one name."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any], float | None]] = []

    def __call__(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], countdown: float | None
    ) -> None:
        if self.name is None or name == self.name:
            self.calls.append((name, tuple(args), dict(kwargs), countdown))

    def args(self, name: str | None = None) -> list[tuple[Any, ...]]:
        """Return the positional arguments of each recorded task (of `name`, if given)."""
        return [args for task, args, _, _ in self.calls if name is None or task == name]

    def ids(self, name: str | None = None) -> list[Any]:
        """Return the first argument of each recorded task (of `name`, if given)."""
        return [args[0] for args in self.args(name)]

    def assert_called_once_with(self, *args: Any) -> None:
        assert self.args() == [args], self.calls

    def assert_not_called(self) -> None:
        assert self.calls == [], self.calls

    def reset_mock(self) -> None:
        self.calls.clear()
