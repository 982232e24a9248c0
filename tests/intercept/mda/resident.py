"""The resident mda agent for the tests: its configuration, its process, fake agents.

Usage::

    cfg = agent_config(rig, "agent", policy_toml)   # store only root may write, [mda] agent_*
    proc = start_mda_agent(rig, cfg, name="agent")  # `mailwarden mda-agent -c cfg`, as root
    with fake_agent(path, behaviour) as sock_path: ...   # a socket that misbehaves

The agent runs as root with a store in a folder only root may write, while
the deliveries run as ``nobody``: a delivery that succeeds went through the
agent (in its own process it could not write the history).

SECURITY: test-only; the agent's socket is 0666 because the deliveries run
as another user; processes are stopped by PID.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from intercept.harness import Proc, wait_until
from intercept.mda.harness import MdaRig
from support.identity import keep_test_user


def agent_config(rig: MdaRig, name: str, toml: str = "", *, mda: str = "") -> Path:
    """The rig's configuration with a root-only store and the agent on ``ROOT/name.sock``."""
    folder = rig.root / name
    folder.mkdir(mode=0o700, exist_ok=True)
    text = rig.stack.config.read_text().replace(str(rig.root / "mw" / "store"), str(folder))
    sock = rig.root / f"{name}.sock"
    text += (
        f'\n[mda]\nagent_socket = "{sock}"\nagent_socket_mode = "0666"\n'
        f'agent_socket_group = ""\n{mda}\n{toml}'
    )
    path = rig.root / f"{name}.toml"
    path.write_text(text)
    path.chmod(0o644)
    keep_test_user(path)
    return path


def agent_socket(config: Path) -> str:
    for line in config.read_text().splitlines():
        if line.startswith("agent_socket ="):
            return line.split("=", 1)[1].strip().strip('"')
    raise AssertionError(f"no agent_socket in {config}")


def answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def start_mda_agent(rig: MdaRig, config: Path, *, name: str) -> Proc:
    proc = rig.stack._spawn(name, ["mda-agent", "-c", str(config)])
    path = agent_socket(config)

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"mda-agent exited: {proc.output()}")
        return answers(path)

    wait_until(up, 60, "the mda agent")
    return proc


def stop_mda_agent(rig: MdaRig, name: str) -> None:
    proc = rig.stack.procs.pop(name, None)
    if proc is not None:
        proc.stop()


@contextlib.contextmanager
def fake_agent(path: Path, behaviour: Callable[[socket.socket], None]) -> Iterator[str]:
    """A unix socket at ``path`` whose every connection is handed to ``behaviour``."""
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o666)  # noqa: S103 - the mail user connects to it
    server.listen(8)
    stop = threading.Event()

    def loop() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                behaviour(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield str(path)
    finally:
        stop.set()
        thread.join(5)
        server.close()
        path.unlink(missing_ok=True)
