"""The policy pack's process, started as the Pulumi CLI starts it.

Standard library only, so a command starts the pack before loading anything else and the pack
boots while the command reads or renders its stacks.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

from mlops_platform.errors import PolicyCheckError

if TYPE_CHECKING:
    from mlops_platform.policy_check import PolicyPackServer

STARTUP_SECONDS: Final = 60


class PackProcess:
    """The pack's process, started by `boot()` (or when first asked for its server), so a
    command whose checks are all cached never starts it."""

    def __init__(self, pack_dir: Path, python: str = sys.executable) -> None:
        if not (pack_dir / "__main__.py").is_file():
            raise PolicyCheckError(f"no policy pack in {pack_dir} (no __main__.py)")
        self.pack_dir = pack_dir
        self._python = python
        self._process: subprocess.Popen[str] | None = None
        self._port: int | None = None
        self._server: PolicyPackServer | None = None

    @classmethod
    def start(cls, pack_dir: Path, python: str = sys.executable) -> PackProcess:
        """Start `__main__.py` in the pack's directory; it prints its port when it is ready."""
        pack = cls(pack_dir, python)
        pack.boot()
        return pack

    def boot(self) -> None:
        """Start the pack now, so it is up by the time a check needs it."""
        if self._process is None:
            self._process = subprocess.Popen(
                [self._python, "__main__.py"],
                cwd=self.pack_dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

    def port(self) -> int:
        """The analyzer's port, once the pack is up."""
        if self._port is None:
            self.boot()
            self._port = self._read_port()
        return self._port

    def server(self) -> PolicyPackServer:
        """A client of the running pack."""
        if self._server is None:
            from mlops_platform.policy_check import PolicyPackServer

            self._server = PolicyPackServer.connect(self.port())
        return self._server

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._process is not None:
            self._process.kill()
            self._process.communicate()

    def _read_port(self) -> int:
        assert self._process is not None
        stdout = self._process.stdout
        assert stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            return int(lines.get(timeout=STARTUP_SECONDS).strip())
        except (queue.Empty, ValueError):
            self._process.kill()
            _, errors = self._process.communicate()
            detail = "\n".join(errors.strip().splitlines()[-15:]) or "(no output)"
            raise PolicyCheckError(
                f"the policy pack in {self.pack_dir} failed to start:\n{detail}"
            ) from None
