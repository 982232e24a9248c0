"""ZMailer: the plan for ``mailwarden zmailer-filter`` as smtpserver's content filter
(docs/zmailer.md).

ZMailer is not packaged by Debian; this follows its standard layout, with
``/etc/zmailer`` (``--mta-config-dir`` names another) holding
``zmailer.conf``, whose ``MAILSHARE``, ``MAILBIN`` and ``POSTOFFICE`` say
where the rest is::

    /etc/zmailer/zmailer.conf                   MAILSHARE=..., MAILBIN=..., POSTOFFICE=...
    $MAILSHARE/smtpserver.conf                  PARAM lines, then the HELO patterns
    $MAILBIN/zmailer                            the control script (zmailer smtp restart)
    $POSTOFFICE/.pid.smtpserver                 the running smtpserver's PID

One mode, ``content-filter``: a wrapper ``$MAILBIN/mailwarden-zmailer``
(smtpserver passes no arguments) runs ``mailwarden zmailer-filter``, and
``PARAM contentfilter`` naming it goes after the last ``PARAM`` line of
smtpserver.conf.  A different content filter already configured is an error:
smtpserver runs one.  The check is ``sh -n`` on the wrapper; the reload
``zmailer smtp restart`` (skipped when smtpserver is not running).

SECURITY: the wrapper is 0755 and owned by whoever runs setup (root); the
filter runs as smtpserver's user (``daemon``), which must reach the daemon's
socket and the quarantine store.  Paths come from zmailer.conf (trusted,
root's) and are quoted in the script.
"""

from __future__ import annotations

import re
from pathlib import Path

from mailwarden.setup import mailwarden_side
from mailwarden.setup.mta_tools import pid_running
from mailwarden.setup.plan import Command, Detected, FileEdit, Plan, SetupContext, SetupError

MODES = ("content-filter",)
SYSTEM_CONFIG_DIR = Path("/etc/zmailer")
WRAPPER = "mailwarden-zmailer"
_ASSIGN = re.compile(r"^\s*([A-Z_]+)=(.*)$")
_PARAM = re.compile(r"^PARAM\s+contentfilter\s+(\S+)", re.MULTILINE)


def _config_dir(ctx: SetupContext) -> Path:
    return (ctx.mta_config_dir or SYSTEM_CONFIG_DIR).absolute()


def _zmailer_conf(config_dir: Path) -> dict[str, str]:
    """``NAME=value`` lines of zmailer.conf (quotes removed); {} when it is missing."""
    try:
        text = (config_dir / "zmailer.conf").read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"zmailer: {config_dir / 'zmailer.conf'}: cannot read: {exc}") from exc
    values = {}
    for line in text.splitlines():
        found = _ASSIGN.match(line)
        if found:
            values[found.group(1)] = found.group(2).strip().strip("'\"")
    return values


class ZmailerIntegration:
    """``INTEGRATION`` of this module; see the module docstring."""

    mta = "zmailer"
    modes = MODES

    def _layout(self, ctx: SetupContext) -> tuple[Path, Path, Path, Path] | None:
        config_dir = _config_dir(ctx)
        values = _zmailer_conf(config_dir)
        if not values.get("MAILBIN"):
            return None
        share = Path(values.get("MAILSHARE") or config_dir)
        postoffice = Path(values.get("POSTOFFICE") or "/var/spool/postoffice")
        return config_dir, share, Path(values["MAILBIN"]), postoffice

    def detect(self, ctx: SetupContext) -> Detected | None:
        layout = self._layout(ctx)
        if layout is None:
            return None
        config_dir, _share, mailbin, postoffice = layout
        if not (mailbin / "smtpserver").exists():
            return None
        running = pid_running(postoffice / ".pid.smtpserver")
        return Detected("zmailer", "ZMailer", config_dir, running, MODES)

    def plan(self, ctx: SetupContext, mode: str) -> Plan:
        if mode not in MODES:
            raise SetupError(f"zmailer: no mode {mode!r} (modes: {', '.join(MODES)})")
        layout = self._layout(ctx)
        if layout is None or self.detect(ctx) is None:
            raise SetupError(
                f"zmailer: not installed (no zmailer.conf with MAILBIN in {_config_dir(ctx)}, "
                "or no smtpserver in MAILBIN)"
            )
        _config, share, mailbin, postoffice = layout
        wrapper = mailbin / WRAPPER
        conf = share / "smtpserver.conf"
        try:
            text = conf.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise SetupError(f"zmailer: {conf}: no such file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise SetupError(f"zmailer: {conf}: cannot read: {exc}") from exc
        found = _PARAM.search(text)
        edited = text
        if found and found.group(1) != str(wrapper):
            raise SetupError(
                f"zmailer: {conf} already runs the content filter {found.group(1)}; "
                "smtpserver runs one: remove it first"
            )
        if not found:
            edited = _insert_param(text, f"PARAM contentfilter {wrapper}\n")
        return Plan(
            mta="zmailer",
            mode=mode,
            edits=(
                FileEdit(
                    wrapper,
                    mailwarden_side.wrapper_script(ctx, "zmailer-filter"),
                    mode=0o755,
                    why="smtpserver starts the filter by path, without arguments",
                ),
                FileEdit(conf, edited, why="smtpserver hands each message to mailwarden"),
            ),
            checks=(Command(("sh", "-n", str(wrapper)), why="the shell reads the wrapper"),),
            reloads=(
                Command(
                    (str(mailbin / "zmailer"), "smtp", "restart"),
                    why="smtpserver reads smtpserver.conf when it starts",
                    needs_running_mta=True,
                ),
            ),
            notes=(
                f"the filter runs as smtpserver's user in {postoffice}: it must reach the "
                "daemon's socket ([daemon] socket_group) and write the quarantine store",
            ),
        )


def _insert_param(text: str, line: str) -> str:
    """``line`` after the last PARAM line (else after the leading comments)."""
    lines = text.splitlines(keepends=True)
    last = max((i for i, item in enumerate(lines) if item.startswith("PARAM")), default=None)
    if last is None:
        last = -1
        while last + 1 < len(lines) and lines[last + 1].startswith("#"):
            last += 1
    if last >= 0 and not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines.insert(last + 1, line)
    return "".join(lines)


INTEGRATION = ZmailerIntegration()
