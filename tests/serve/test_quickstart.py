"""``bash scripts/quickstart``, the README's run command, on this machine: it ends
in ``mailwarden serve`` with the content filter delivering into a Maildir, and
the README's swaks commands do what the README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from serve.harness import ServeRun, free_port, swaks

REPO = Path(__file__).resolve().parents[2]


def test_the_quickstart_serves_mail_into_a_maildir(serve_folder: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SKIP_BOOTSTRAP": "1",
        "QUICKSTART_DIR": str(serve_folder),
        "QUICKSTART_PORT": str(port),
    }
    log_path = serve_folder.parent / f"{serve_folder.name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["bash", str(REPO / "scripts" / "quickstart")],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    # the script ends by exec'ing serve: the process is serve itself
    run = ServeRun(serve_folder, serve_folder / "mailwarden.toml", proc, log_path)
    try:
        run.wait_for(r"^mailwarden-serve: INFO smtp-filter: ready$", deadline=300)
        assert f"swaks --server 127.0.0.1:{port} --to user@localhost" in run.log()

        hello = swaks(port, "--header", "Subject: hello", cwd=REPO)
        assert "250 2.0.0 Ok: delivered" in hello, hello + run.log()
        eicar = swaks(port, "--data", "@examples/eicar-attached.eml", cwd=REPO)
        assert "250 2.7.0 Ok: quarantined" in eicar, eicar + run.log()

        (delivered,) = (serve_folder / "Maildir" / "new").iterdir()
        assert b"X-Virus-Status: Clean" in delivered.read_bytes()
        listing = subprocess.run(
            [
                sys.executable,
                "-m",
                "mailwarden",
                "quarantine",
                "list",
                "-c",
                str(run.config),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "Eicar-Test-Signature" in listing
        run.descendants()
        assert run.stop() == 0
        assert run.leftovers() == []
    finally:
        run.kill_everything()
        log_path.unlink(missing_ok=True)
