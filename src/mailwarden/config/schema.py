"""Every configuration key, its type, its default and its documentation, in one place.

The loader (``config/load.py``) validates files against this table, ``mailwarden
config defaults`` prints it as a commented TOML file, and docs/configuration.md
is that output.  Adding a key means adding one :class:`Option` here; nothing else
carries a default.

SECURITY: defaults are the safe ones (loopback only, defer on failure); this
module only describes, it reads nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Option:
    key: str
    default: Any
    kind: str  # "bool" | "int" | "float" | "str" | "list[str]" | "size" | "list[table]"
    doc: str
    minimum: float | None = None
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], str | None] | None = None
    #: a value that must not be shown (``config check``, the web interface)
    secret: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    doc: str
    options: tuple[Option, ...]

    def option(self, key: str) -> Option | None:
        for opt in self.options:
            if opt.key == key:
                return opt
        return None


MB = 1_000_000
MiB = 1024 * 1024

#: Policy actions a configuration may name; ``policy.ActionKind`` has the same values.
ACTIONS: tuple[str, ...] = ("accept", "tag", "quarantine", "reject", "defer", "discard")
#: Verdict categories that have a configurable action (clean mail is always accepted).
CATEGORIES: tuple[str, ...] = ("infected", "suspicious", "unscanned", "error")


def _check_networks(value: list[str]) -> str | None:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"not an address or network (such as 10.0.0.0/8 or ::1/128): {item!r}"
    return None


def _check_domains(value: list[str]) -> str | None:
    for item in value:
        if not _DOMAIN.match(item):
            return f"not a domain (such as example.org or .example.org): {item!r}"
    return None


def _check_override(table: dict[str, Any]) -> str | None:
    """Validate one ``[[policy.override]]`` table; a problem with one key starts "key: "."""
    known = ("recipients", "senders", *CATEGORIES)
    for key, item in table.items():
        if key not in known:
            return f"{key}: unknown key (known: {', '.join(known)})"
        if key in CATEGORIES and item not in ACTIONS:
            return f"{key}: must be one of {', '.join(ACTIONS)}; got {item!r}"
        if key in ("recipients", "senders"):
            if not isinstance(item, list) or not all(isinstance(p, str) for p in item):
                return f"{key}: expected a list of addresses or domains, got {item!r}"
            bad = [p for p in item if not _PATTERN.match(p)]
            if bad:
                return f"{key}: not an address, domain or .domain: {bad[0]!r}"
    if not table.get("recipients") and not table.get("senders"):
        return "needs recipients or senders (a list of addresses or domains)"
    if not any(c in table for c in CATEGORIES):
        return f"sets no action (one of {', '.join(CATEGORIES)})"
    return None


_DOMAIN = re.compile(
    r"^\.?(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
_PATTERN = re.compile(r"^(?:[^@\s]+@)?\.?[A-Za-z0-9_.-]+$")


def _action_option(key: str, default: str, doc: str) -> Option:
    return Option(key, default, "str", doc, choices=ACTIONS)


def _direction_option(direction: str, category: str) -> Option:
    return Option(
        f"{direction}_{category}",
        "",
        "str",
        f"Action for {category} {direction} mail; empty: the [policy] {category} value.",
        choices=("", *ACTIONS),
    )


def _octal_mode(value: Any) -> str | None:
    text = str(value)
    digits = text[1:] if len(text) == 4 and text.startswith("0") else text
    if len(digits) != 3 or any(c not in "01234567" for c in digits):
        return f"expected an octal mode such as 0660, got {value!r}"
    return None


def _host_port(value: Any) -> str | None:
    text = str(value)
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"expected HOST:PORT such as 127.0.0.1:3310, got {value!r}"
    return None


def _password_hash(value: Any) -> str | None:
    text = str(value)
    if not text or (text.startswith("scrypt$") and text.count("$") == 5):
        return None
    return "expected the output of `mailwarden web passwd` (scrypt$...)"


def _check_dsn(value: Any) -> str | None:
    text = str(value)
    if re.search(r"(^|\s)password\s*=", text) or re.search(r"://[^/@?]*:[^/@?]*@", text):
        return "holds a password; put it in [store] password_file or ~/.pgpass instead"
    return None


def _downstream(value: Any) -> str | None:
    text = str(value)
    if text.startswith("maildir:"):
        return (
            None if text[len("maildir:") :] else "maildir: needs a folder, e.g. maildir:/srv/mail"
        )
    return _host_port(text) if text else "expected HOST:PORT or maildir:PATH"


#: options the milter shares with the SMTP agents
_MILTER_SHARED = ("spool_threshold", "scan_timeout")


def _milter_socket(value: Any) -> str | None:
    """Sendmail's notation: unix:PATH, local:PATH, inet:PORT@HOST, inet6:PORT@HOST."""
    text = str(value)
    kind, _, rest = text.partition(":")
    if kind in ("unix", "local") and rest.startswith("/"):
        return None
    if kind in ("inet", "inet6"):
        port = rest.partition("@")[0]
        if port.isdigit() and int(port) < 65536:
            return None
    return f"expected unix:PATH or inet:PORT@HOST such as inet:8890@127.0.0.1, got {value!r}"


def _smtp_agent_options(
    listen: str, downstream_doc: str, downstream_check: Callable[[Any], str | None]
) -> tuple[Option, ...]:
    """Options every SMTP-speaking agent has, with its listener's default."""
    return (
        Option(
            "listen",
            listen,
            "str",
            "Address the agent listens on, HOST:PORT. Loopback by default: the MTA is its "
            "only client.",
            check=_host_port,
        ),
        Option("downstream", "127.0.0.1:10026", "str", downstream_doc, check=downstream_check),
        Option(
            "hostname",
            "",
            "str",
            "Name in the greeting and in replies; empty: the system's host name.",
        ),
        Option(
            "max_message_size",
            50 * MiB,
            "size",
            "Largest message accepted (advertised as SIZE); a larger one gets 552 and "
            "nothing of it is delivered. Keep it at or below [daemon] stream_max_length.",
            minimum=1024,
        ),
        Option(
            "spool_threshold",
            1 * MiB,
            "size",
            "Messages larger than this are received into an unlinked temporary file "
            "instead of memory.",
            minimum=4096,
        ),
        Option(
            "max_recipients",
            1000,
            "int",
            "Recipients per transaction; more get 452 (the client sends them in another "
            "transaction).",
            minimum=1,
        ),
        Option(
            "max_line_length",
            64 * 1024,
            "size",
            "Longest command or message line held in memory at once; longer message lines "
            "pass through in pieces, longer command lines get 500.",
            minimum=1024,
        ),
        Option(
            "timeout",
            300.0,
            "float",
            "Seconds a client may stay silent, between commands or inside DATA, before "
            "the session is closed (nothing of an unfinished message is delivered).",
            minimum=0.1,
        ),
        Option(
            "downstream_timeout",
            300.0,
            "float",
            "Seconds for each step of the SMTP session with the downstream server.",
            minimum=0.1,
        ),
        Option(
            "scan_timeout",
            150.0,
            "float",
            "Seconds to wait for the daemon's verdict; past it the message is an 'error' "
            "(deferred by default).",
            minimum=0.1,
        ),
        Option(
            "max_sessions",
            200,
            "int",
            "Client sessions served at once; more get 421 and are closed.",
            minimum=1,
        ),
    )


def _download_proxy_options(
    listen: str, listen_tls: str, server: str, timeout: float
) -> tuple[Option, ...]:
    """Options the POP3 and IMAP proxies share, with their own defaults."""
    return (
        Option(
            "listen",
            listen,
            "str",
            "Address the proxy listens on for mail clients, HOST:PORT (plain text, "
            "STARTTLS/STLS when tls_cert is set).",
            check=_host_port,
        ),
        Option(
            "listen_tls",
            listen_tls,
            "str",
            "Address of the implicit-TLS listener, used only when tls_cert is set. Empty: none.",
            check=_host_port,
        ),
        Option("server", server, "str", "The real server, HOST:PORT.", check=_host_port),
        Option(
            "server_tls",
            "none",
            "str",
            "TLS to the real server: 'none', 'starttls' (upgrade after the greeting) or "
            "'tls' (implicit TLS). The server's certificate is always verified.",
            choices=("none", "starttls", "tls"),
        ),
        Option(
            "server_ca_file",
            "",
            "str",
            "CA certificates (PEM) that verify the server's certificate. Empty: the system's CAs.",
        ),
        Option(
            "server_name",
            "",
            "str",
            "Name the server's certificate must carry. Empty: the host of 'server'.",
        ),
        Option(
            "tls_cert",
            "",
            "str",
            "Certificate chain (PEM) the proxy shows to mail clients; enables STARTTLS/STLS "
            "and the listen_tls listener. Empty: plain text only.",
        ),
        Option("tls_key", "", "str", "Private key (PEM) of tls_cert."),
        Option(
            "hostname",
            "",
            "str",
            "Name in the warning messages. Empty: [headers] hostname, else the system's host name.",
        ),
        Option(
            "max_message_size",
            50 * MiB,
            "size",
            "Largest message scanned; a larger one is never served (it gets -ERR/NO, or "
            "the warning with on_failure = 'warning'). Keep it at or below [daemon] "
            "stream_max_length.",
            minimum=1024,
        ),
        Option(
            "scan_timeout",
            150.0,
            "float",
            "Seconds to wait for the daemon's verdict; past it the message is an 'error'.",
            minimum=0.1,
        ),
        Option(
            "timeout",
            timeout,
            "float",
            "Seconds a client may stay silent before the session is closed.",
            minimum=0.1,
        ),
        Option(
            "server_timeout",
            120.0,
            "float",
            "Seconds to wait for each answer of the real server.",
            minimum=0.1,
        ),
        Option(
            "max_sessions",
            200,
            "int",
            "Client sessions served at once; one more is answered 'busy' and closed.",
            minimum=1,
        ),
        Option(
            "on_failure",
            "error",
            "str",
            "A message that cannot be scanned (daemon down, timeout, over the size limit, "
            "policy 'defer'): 'error' answers -ERR (POP3) or NO (IMAP) for it, so the "
            "client tries again later; 'warning' serves a warning message in its place. "
            "Never the unscanned message.",
            choices=("error", "warning"),
        ),
        Option(
            "infected_original",
            "keep",
            "str",
            "What happens on the server to a message served as a warning: 'keep' leaves "
            "it; 'delete' (POP3 only) marks it deleted in the session, so the client's QUIT "
            "removes it. The IMAP proxy always keeps it: expunging would change the "
            "client's sequence numbers under it.",
            choices=("keep", "delete"),
        ),
        Option(
            "transparent",
            False,
            "bool",
            "Transparent mode: connect each client to the address it meant to reach before "
            "the firewall redirected it to the proxy (SO_ORIGINAL_DST, IPv4); 'server' "
            "serves connections that were not redirected. docs/pop3-imap.md shows the "
            "nftables rules.",
        ),
        Option(
            "cache_entries",
            10000,
            "int",
            "Verdicts remembered per process, by user and POP3 UIDL or IMAP mailbox, "
            "UIDVALIDITY and UID, so a message is scanned once however often it is "
            "fetched. 0: none.",
            minimum=0,
        ),
    )


#: Agents ``mailwarden serve`` can start, by command name; serve/children.py has
#: one entry for each (a test keeps the two equal).
SERVE_AGENTS: tuple[str, ...] = (
    "smtp-filter",
    "smtp-proxy",
    "milter",
    "pop3-proxy",
    "imap-proxy",
    "mda-agent",
    "web",
    "metrics",
    "update-watch",
    "update-mirror",
)


def _check_agents(value: list[str]) -> str | None:
    for name in value:
        if name not in SERVE_AGENTS:
            return f"unknown agent {name!r} (known: {', '.join(SERVE_AGENTS)})"
    if len(set(value)) != len(value):
        return "an agent is named twice"
    return None


def _exit_code(value: Any) -> str | None:
    return None if 0 <= int(value) <= 255 else f"expected an exit status 0-255, got {value!r}"


def _failure_code(value: Any) -> str | None:
    # 0 tells the MTA the mail was delivered: a refusal or a retry must never say so
    if 1 <= int(value) <= 255:
        return None
    return f"expected a failure exit status 1-255 (0 would lose the mail), got {value!r}"


#: ``[mda]`` exit codes: (key, default, documentation); the ``exit_*`` codes that
#: refuse, retry or hold back the message cannot be 0.
_MDA_EXIT_CODES: tuple[tuple[str, int, str], ...] = (
    (
        "exit_tempfail",
        75,
        "Exit status when the policy defers (daemon unreachable or timed out by default) "
        "and on any internal failure: 75 (EX_TEMPFAIL) makes the MTA keep the mail.",
    ),
    (
        "exit_reject",
        77,
        "Exit status when the policy rejects (bounce): 77 (EX_NOPERM) or 69 "
        "(EX_UNAVAILABLE); the reason goes to standard error for the MTA's bounce.",
    ),
    ("exit_quarantine", 0, "mda: exit status after the message went to the quarantine."),
    ("exit_discard", 0, "mda: exit status after the policy discarded the message."),
    (
        "exit_usage",
        75,
        "Exit status for a bad command line or configuration, or an original MDA that "
        "cannot be run. 78 (EX_CONFIG) makes Postfix and Exim bounce the mail instead "
        "of keeping it.",
    ),
    (
        "pipe_exit_quarantine",
        1,
        "pipe: exit status after the message went to the quarantine (nothing on standard output).",
    ),
    (
        "pipe_exit_discard",
        2,
        "pipe: exit status after the policy discarded the message (nothing on standard output).",
    ),
)


def _daemon_use_options(deferred: str, waiting: str) -> tuple[Option, ...]:
    """``daemon_socket``, ``connect_timeout`` and ``scan_timeout`` of an agent section."""
    return (
        Option(
            "daemon_socket",
            "",
            "str",
            "The daemon's unix socket. Empty: the [daemon] socket value.",
        ),
        Option(
            "connect_timeout",
            5.0,
            "float",
            f"Seconds to connect to the daemon; past it the message is an 'error' ({deferred}).",
            minimum=0.1,
        ),
        Option(
            "scan_timeout",
            120.0,
            "float",
            f"Seconds to wait for the daemon's verdict; past it the message is an 'error'. "
            f"{waiting}",
            minimum=0.1,
        ),
    )


def _check_categories(value: list[str]) -> str | None:
    for item in value:
        if item not in CATEGORIES:
            return f"unknown category {item!r} (known: {', '.join(CATEGORIES)})"
    return None


def _check_directions(value: list[str]) -> str | None:
    known = ("inbound", "outbound", "unknown")
    for item in value:
        if item not in known:
            return f"unknown direction {item!r} (known: {', '.join(known)})"
    return None


def _notify_role(
    role: str, categories: list[str], directions: list[str], who: str
) -> tuple[Option, ...]:
    return (
        Option(
            f"{role}_categories",
            categories,
            "list[str]",
            f"Verdict categories {who} is told about (infected, suspicious, unscanned, error).",
            check=_check_categories,
        ),
        Option(
            f"{role}_directions",
            directions,
            "list[str]",
            f"Directions of the mail {who} is told about (inbound, outbound, unknown).",
            check=_check_directions,
        ),
    )


_NOTIFY = Section(
    "notify",
    "Notifications about mail that was not delivered as sent: to the administrator, "
    "to the recipients whose copy was held back, and (only when enabled here) to the "
    "sender. Mail the policy defers is not notified about: it comes back. "
    "docs/notifications.md explains the templates, loop protection and the rate limit.",
    (
        Option("enabled", True, "bool", "Send notifications at all."),
        Option(
            "admin",
            ["postmaster"],
            "list[str]",
            "Administrator addresses. A bare 'postmaster' is completed by the MTA.",
        ),
        *_notify_role(
            "admin", ["infected"], ["inbound", "outbound", "unknown"], "the administrator"
        ),
        *_notify_role(
            "recipient",
            ["infected", "suspicious", "unscanned"],
            ["inbound"],
            "a recipient whose copy was quarantined, discarded or refused",
        ),
        *_notify_role("sender", [], ["outbound"], "the sender (envelope sender, easily forged)"),
        Option(
            "from_address",
            "",
            "str",
            "From: of notifications. Empty: postmaster@ the [headers] hostname (else the "
            "system's host name).",
        ),
        Option(
            "envelope_sender",
            "",
            "str",
            "Envelope sender (MAIL FROM) of notifications. Empty: the null sender <>, so "
            "nothing ever bounces back to us.",
        ),
        Option(
            "template_dir",
            "/etc/mailwarden/notify",
            "str",
            "Folder of templates that override the bundled ones by name "
            "(ROLE-CATEGORY-DIRECTION.txt, ROLE-CATEGORY.txt, ROLE.txt). A folder that "
            "does not exist: the bundled templates only.",
        ),
        Option(
            "transport",
            "smtp",
            "str",
            "How notifications leave: 'smtp' to the server named by smtp, or 'sendmail' "
            "through the local sendmail program.",
            choices=("smtp", "sendmail"),
        ),
        Option(
            "smtp",
            "127.0.0.1:25",
            "str",
            "SMTP server for notifications, HOST:PORT.",
            check=_host_port,
        ),
        Option(
            "sendmail", "/usr/sbin/sendmail", "str", "sendmail program (transport = 'sendmail')."
        ),
        Option("timeout", 30.0, "float", "Seconds to hand one notification on.", minimum=0.1),
        Option(
            "rate_limit",
            20,
            "int",
            "Notifications one address may receive per hour (a token bucket per process); "
            "more are dropped and logged. 0: no limit.",
            minimum=0,
        ),
        Option(
            "max_pending",
            1000,
            "int",
            "Notifications waiting to be sent; more are dropped and logged, so a flood "
            "never holds memory.",
            minimum=1,
        ),
    ),
)

_UPDATE = Section(
    "update",
    "Signature updates (`mailwarden update`): fetch a set of signature files from a mirror "
    "folder or URL, check each against the SHA-256 manifest, test-load it, switch to it "
    "at once and make the daemon reload. docs/update.md explains.",
    (
        Option(
            "source",
            "",
            "str",
            "Where sets come from: a mirror folder, or an http:// or https:// URL of "
            "another node's --serve-mirror or a web server (URL/MANIFEST, URL/FILE). "
            "Empty: name it with --from.",
        ),
        Option(
            "database_dir",
            "/var/lib/mailwarden/signatures",
            "str",
            "The installed set: a symbolic link that update switches to each new set "
            "(the sets live in DATABASE_DIR.sets beside it). Name it in [engine] "
            "databases.",
        ),
        Option("keep", 2, "int", "Previous sets kept for --rollback.", minimum=1),
        Option(
            "key_file",
            "",
            "str",
            "Shared secret (0600) that signs manifests (HMAC-SHA256): a manifest without "
            "a valid signature is refused. Empty: manifests are not signed.",
        ),
        Option(
            "ca_file",
            "",
            "str",
            "CA certificates (PEM) that verify an https source. Empty: the system's CAs.",
        ),
        Option(
            "timeout", 60.0, "float", "Seconds for each network step of a download.", minimum=0.1
        ),
        Option(
            "max_file_size",
            1024 * MiB,
            "size",
            "Largest signature file accepted from a source.",
            minimum=1024,
        ),
        Option(
            "reload",
            True,
            "bool",
            "Make the daemon reload after a switch: RELOAD on the [daemon] socket, else "
            "SIGHUP to the process in [daemon] pid_file.",
        ),
        Option(
            "reload_timeout",
            600.0,
            "float",
            "Seconds to wait for the daemon to report the reload in STATS.",
            minimum=0.1,
        ),
        Option(
            "watch_dir",
            "/var/lib/clamav",
            "str",
            "Folder --watch follows (freshclam's): each change, once settled, is installed "
            "as a new set.",
        ),
        Option(
            "watch_interval",
            30.0,
            "float",
            "Seconds between two looks at watch_dir; a change is installed once two looks agree.",
            minimum=0.1,
        ),
        Option(
            "mirror_listen",
            "127.0.0.1:8026",
            "str",
            "Address --serve-mirror listens on, HOST:PORT. Loopback by default.",
            check=_host_port,
        ),
    ),
)


SECTIONS: tuple[Section, ...] = (
    Section(
        "engine",
        "The scanning engine: which signatures it loads and where it caches them.",
        (
            Option(
                "databases",
                ["/var/lib/clamav"],
                "list[str]",
                "Signature files or folders: ClamAV databases (.hdb .hsb .mdb .msb .ndb .ldb "
                ".fp .sfp .ign2 .cvd .cld .cud) and YARA rules (.yar .yara). A folder that "
                "does not exist is skipped with a note, so freshclam's folder is used when "
                "present.",
            ),
            Option(
                "bundled",
                True,
                "bool",
                "Load the bundled signature set (EICAR and test signatures) as well.",
            ),
            Option(
                "cache_dir",
                "/var/cache/mailwarden",
                "str",
                "Where the compiled signature database is cached, keyed by the signature "
                "files' digest. Empty string: no cache.",
            ),
            Option(
                "matcher",
                "auto",
                "str",
                "Body-pattern matcher: hyperscan, aho (pure fallback) or auto.",
                choices=("auto", "hyperscan", "aho"),
            ),
            Option(
                "workers",
                0,
                "int",
                "Worker processes for bulk scans; 0 means one per CPU core.",
                minimum=0,
            ),
        ),
    ),
    Section(
        "limits",
        "Per-message limits. Going over any of them makes the message 'unscanned' with the "
        "limit named, never 'clean'.",
        (
            Option("max_depth", 16, "int", "Nesting depth of messages and archives.", minimum=1),
            Option("max_files", 10_000, "int", "Parts and archive members per message.", minimum=1),
            Option(
                "max_total_bytes",
                500 * MB,
                "size",
                "Bytes expanded from one message, all parts and members together.",
                minimum=1,
            ),
            Option(
                "max_ratio",
                200.0,
                "float",
                "Largest expansion ratio of one archive member (judged past 1 MiB).",
                minimum=1,
            ),
            Option("max_seconds", 60.0, "float", "Time to scan one message.", minimum=0.001),
            Option(
                "spool_threshold",
                16 * MiB,
                "size",
                "Objects larger than this are held in an unlinked temporary file, not memory.",
                minimum=4096,
            ),
            Option(
                "max_header_bytes",
                1 * MiB,
                "size",
                "Header block size beyond which a part's headers are not parsed (the raw "
                "bytes are still matched).",
                minimum=1024,
            ),
            Option(
                "max_mime_parts",
                20_000,
                "int",
                "MIME parts read from one message; the rest is unscanned.",
                minimum=1,
            ),
        ),
    ),
    Section(
        "heuristics",
        "Heuristic checks. Their findings make a message 'suspicious', with names of the "
        "form Heuristics.*.",
        (
            Option("executables", True, "bool", "Executables (PE, ELF, Mach-O) by content."),
            Option(
                "scripts", True, "bool", "Scripts and shortcuts by name (.js .vbs .hta .lnk ...)."
            ),
            Option("disk_images", True, "bool", "Disk images (.iso .img .vhd) by name or content."),
            Option(
                "double_extension",
                True,
                "bool",
                "Double extensions (invoice.pdf.exe, padding with spaces) and right-to-left "
                "override characters in names.",
            ),
            Option(
                "type_mismatch",
                True,
                "bool",
                "Content that contradicts the name (a PE named .pdf).",
            ),
            Option("executables_in_archives", True, "bool", "Executables inside archives."),
            Option("office_macros", True, "bool", "Office documents with VBA or XLM macros."),
            Option(
                "encrypted_archives",
                False,
                "bool",
                "Also report encrypted archives as a finding (they are 'unscanned' anyway).",
            ),
        ),
    ),
    Section(
        "network",
        "Which mail is outbound: mail from trusted networks or from SASL-authenticated "
        "senders to a recipient outside the local domains. Everything else is inbound.",
        (
            Option(
                "local_domains",
                [],
                "list[str]",
                "Domains delivered on this server; a leading dot (.example.org) also "
                "covers every subdomain.",
                check=_check_domains,
            ),
            Option(
                "trusted_networks",
                ["127.0.0.0/8", "::1/128"],
                "list[str]",
                "Client addresses or networks whose mail counts as our own (like "
                "Postfix's mynetworks).",
                check=_check_networks,
            ),
        ),
    ),
    Section(
        "policy",
        "What happens to mail in each verdict category: accept (deliver), tag (deliver "
        "with the subject tag), quarantine (keep in the quarantine, deliver nothing), "
        "reject (5xx), defer (4xx, the MTA retries) or discard (accept and drop). Clean "
        "mail is always accepted. Precedence, most specific first: address override, "
        "domain override, per-direction value, category value. docs/policy.md explains.",
        (
            _action_option(
                "infected", "reject", "Action when a signature matched (5xx with its name)."
            ),
            _action_option("suspicious", "quarantine", "Action when only heuristics matched."),
            _action_option(
                "unscanned",
                "tag",
                "Action when part of the message could not be scanned (encrypted, over a "
                "limit, timed out).",
            ),
            _action_option(
                "error",
                "defer",
                "Action when scanning failed or the daemon was unreachable.",
            ),
            *(_direction_option(d, c) for d in ("inbound", "outbound") for c in CATEGORIES),
            Option(
                "after_queue_reject",
                "quarantine",
                "str",
                "What reject becomes where the MTA has already accepted the mail "
                "(content filter, LMTP, MDA): quarantine or discard, or bounce to let the "
                "MTA send a bounce (backscatter to forged senders).",
                choices=("quarantine", "discard", "bounce"),
            ),
            Option(
                "keep_rejected",
                False,
                "bool",
                "Also keep a copy of rejected, discarded and bounced mail in the quarantine.",
            ),
            Option(
                "override",
                [],
                "list[table]",
                "Overrides, one [[policy.override]] table each: recipients and/or senders "
                "(addresses, domains, .domain for subdomains) and the actions they change "
                "(infected, suspicious, unscanned, error).",
                check=_check_override,
            ),
        ),
    ),
    Section(
        "headers",
        "Headers and subject tags added to delivered mail.",
        (
            Option(
                "add",
                True,
                "bool",
                "Add X-Virus-Scanned (mailwarden VERSION on HOST) and X-Virus-Status "
                "(Clean, Infected (name), Suspicious (name), Unscanned (reason)).",
            ),
            Option(
                "hostname", "", "str", "HOST in X-Virus-Scanned; empty: the system's host name."
            ),
            Option(
                "strip_incoming",
                True,
                "bool",
                "Remove X-Virus-Scanned and X-Virus-Status headers that arrive with the "
                "mail, so a forged 'Clean' never reaches the reader.",
            ),
            Option("subject_tag_infected", "***VIRUS***", "str", "Subject tag for infected."),
            Option(
                "subject_tag_suspicious", "***SUSPICIOUS***", "str", "Subject tag for suspicious."
            ),
            Option("subject_tag_unscanned", "***UNSCANNED***", "str", "Subject tag for unscanned."),
            Option("subject_tag_error", "***UNCHECKED***", "str", "Subject tag for error."),
        ),
    ),
    Section(
        "store",
        "The quarantine and the history of scanned messages.",
        (
            Option(
                "backend",
                "sqlite",
                "str",
                "Store backend: 'sqlite' (one node, nothing to run) or 'postgresql' "
                "(several nodes share one quarantine and one history).",
                choices=("sqlite", "postgresql"),
            ),
            Option(
                "database",
                "/var/lib/mailwarden/mailwarden.sqlite3",
                "str",
                "SQLite database file (created 0600).",
            ),
            Option(
                "spool_dir",
                "/var/lib/mailwarden/quarantine",
                "str",
                "Folder of quarantined messages for SQLite (created 0700, files 0600, named "
                "by generated ids only). PostgreSQL keeps the messages in the database.",
            ),
            Option(
                "dsn",
                "",
                "str",
                "PostgreSQL connection string or URI, such as 'host=db.example.org "
                "dbname=mailwarden user=mailwarden'; empty: libpq's defaults and PG* "
                "variables. No password here: use password_file or ~/.pgpass.",
                check=_check_dsn,
            ),
            Option(
                "password_file",
                "",
                "str",
                "File whose first line is the PostgreSQL password (refused when others may "
                "read it); empty: libpq's PGPASSWORD, PGPASSFILE or ~/.pgpass.",
            ),
            Option(
                "connect_timeout",
                5.0,
                "float",
                "Seconds to wait for a PostgreSQL connection; mail that needs the store while "
                "it is unreachable is deferred.",
                minimum=1,
            ),
            Option(
                "statement_timeout",
                30.0,
                "float",
                "Seconds a PostgreSQL statement may run before it is cancelled.",
                minimum=1,
            ),
            Option(
                "retention_days",
                30,
                "int",
                "Days a quarantined message is kept (see purge_interval).",
                minimum=1,
            ),
            Option(
                "event_retention_days",
                90,
                "int",
                "Days the history of scanned messages is kept (see purge_interval).",
                minimum=1,
            ),
            Option(
                "purge_interval",
                3600,
                "int",
                "Seconds between the purges 'mailwarden serve' runs by itself (retention_days, "
                "event_retention_days); 0: none (run 'quarantine purge' from a timer).",
                minimum=0,
            ),
        ),
    ),
    Section(
        "release",
        "Re-injection of released messages, marked so that they are not quarantined again.",
        (
            Option(
                "method",
                "smtp",
                "str",
                "How released mail is re-injected: 'smtp' to host:port, or 'sendmail' "
                "through the local MTA's sendmail program.",
                choices=("smtp", "sendmail"),
            ),
            Option("host", "127.0.0.1", "str", "SMTP server released mail is sent to."),
            Option("port", 25, "int", "Its port.", minimum=1),
            Option(
                "timeout",
                60.0,
                "float",
                "Seconds for the SMTP session or the sendmail program.",
                minimum=0.1,
            ),
            Option(
                "sendmail_path",
                "/usr/sbin/sendmail",
                "str",
                "The MTA's sendmail program, run as 'sendmail -G -i -f SENDER -- "
                "RECIPIENT...' (no shell) when method = 'sendmail'.",
            ),
            Option(
                "secret_file",
                "/etc/mailwarden/release.key",
                "str",
                "Per-installation secret that signs the release header (created 0600 on "
                "the first release). Every node that scans released mail needs the same file.",
            ),
            Option(
                "max_age",
                604800,
                "int",
                "Seconds a release mark stays valid (retries in the MTA's queue included).",
                minimum=60,
            ),
        ),
    ),
    Section(
        "daemon",
        "The scanning daemon (`mailwarden daemon`): one process that owns the signature "
        "database and answers the clamd protocol plus MAILSCAN on a unix socket and, when "
        "configured, on TCP.",
        (
            Option(
                "socket",
                "/run/mailwarden/daemon.sock",
                "str",
                "Unix socket the daemon listens on (clamd's LocalSocket). Empty: none.",
            ),
            Option(
                "socket_mode",
                "0660",
                "str",
                "Permissions of the unix socket, in octal: owner and group may connect.",
                check=_octal_mode,
            ),
            Option(
                "socket_group",
                "mailwarden",
                "str",
                "Group that owns the unix socket (the agents' group). Empty: the daemon's "
                "primary group.",
            ),
            Option(
                "tcp",
                "",
                "str",
                "TCP address to listen on as HOST:PORT, e.g. 127.0.0.1:3310. Empty: no TCP. "
                "The protocol has no authentication: use a loopback address unless a "
                "firewall guards the port.",
                check=_host_port,
            ),
            Option(
                "workers",
                0,
                "int",
                "Scanning worker processes; 0 means one per CPU core.",
                minimum=0,
            ),
            Option(
                "queue",
                64,
                "int",
                "Scan requests that may wait for a free worker; one more gets an immediate "
                "'Queue full' error instead of waiting.",
                minimum=0,
            ),
            Option(
                "max_connections",
                256,
                "int",
                "Client connections open at once; more are answered with an error and closed.",
                minimum=1,
            ),
            Option(
                "scan_timeout",
                120.0,
                "float",
                "Seconds one scan may take in a worker; past it the worker is replaced and "
                "the client gets 'Time limit reached ERROR'.",
                minimum=0.1,
            ),
            Option(
                "stream_max_length",
                64 * MiB,
                "size",
                "Largest INSTREAM or MAILSCAN stream (clamd's StreamMaxLength); a larger "
                "one gets 'INSTREAM size limit exceeded. ERROR'.",
                minimum=1,
            ),
            Option(
                "spool_threshold",
                1 * MiB,
                "size",
                "Streams larger than this are spooled to an unlinked temporary file instead "
                "of memory.",
                minimum=4096,
            ),
            Option(
                "spool_dir",
                "",
                "str",
                "Folder for spooled streams. Empty: $TMPDIR, else /tmp.",
            ),
            Option(
                "command_timeout",
                30.0,
                "float",
                "Seconds a new connection may take to send its command (clamd's "
                "CommandReadTimeout).",
                minimum=0.1,
            ),
            Option(
                "read_timeout",
                120.0,
                "float",
                "Seconds a client may stall in the middle of a stream (clamd's ReadTimeout).",
                minimum=0.1,
            ),
            Option(
                "idle_timeout",
                30.0,
                "float",
                "Seconds an IDSESSION may stay idle between commands (clamd's IdleTimeout).",
                minimum=0.1,
            ),
            Option(
                "path_scans",
                True,
                "bool",
                "Accept SCAN, CONTSCAN, MULTISCAN and ALLMATCHSCAN, which make the daemon "
                "open files by path with its own rights. INSTREAM, FILDES and MAILSCAN "
                "are always accepted.",
            ),
            Option(
                "unscanned_reply",
                "error",
                "str",
                "What clamd-protocol clients are told about a message that could not be "
                "scanned completely (encrypted archive, a limit): 'error' (they defer it), "
                "'found' (reported as Heuristics.Unscanned) or 'ok'. MAILSCAN always "
                "returns the full verdict.",
                choices=("error", "found", "ok"),
            ),
            Option(
                "pid_file",
                "/run/mailwarden/daemon.pid",
                "str",
                "File the daemon writes its process id to. Empty: none.",
            ),
        ),
    ),
    Section(
        "smtp_filter",
        "The after-queue content filter (`mailwarden smtp-filter`, Postfix content_filter): "
        "receives each message by SMTP or LMTP, scans it through the daemon, applies the "
        "policy and re-injects what is delivered into the downstream server; the MTA gets "
        "250 only after the downstream accepted. docs/postfix.md shows the Postfix side.",
        (
            *_smtp_agent_options(
                "127.0.0.1:10025",
                "Where delivered mail goes: HOST:PORT of an SMTP server (Postfix's "
                "re-injection smtpd, which must not filter again), or maildir:PATH to "
                "deliver into a local Maildir (no MTA needed).",
                _downstream,
            ),
            Option(
                "lmtp",
                False,
                "bool",
                "Speak LMTP instead of SMTP to the MTA: one reply per recipient, so "
                "recipients with different policies or downstream results are answered "
                "each on its own.",
            ),
            Option(
                "xforward",
                True,
                "bool",
                "Offer XFORWARD to the MTA and pass the original client's name, address, "
                "HELO, protocol and queue id on to a downstream that offers it.",
            ),
        ),
    ),
    Section(
        "smtp_proxy",
        "The before-queue proxy (`mailwarden smtp-proxy`, Postfix smtpd_proxy_filter): "
        "relays the SMTP dialogue to the downstream server and answers the end of DATA "
        "itself, so infected mail is refused while the client is still connected and no "
        "bounce is ever generated. docs/postfix.md shows the Postfix side.",
        _smtp_agent_options(
            "127.0.0.1:10025",
            "The SMTP server that receives the relayed dialogue, HOST:PORT (Postfix's "
            "after-filter smtpd).",
            _host_port,
        ),
    ),
    Section(
        "milter",
        "The milter (`mailwarden milter`): Sendmail's and Postfix's mail filter protocol "
        "(version 6). The MTA sends each message before it queues it; infected mail is "
        "refused at the end of DATA with a reply naming the signature, clean mail gets the "
        "X-Virus-* headers. docs/milter.md and docs/sendmail.md show the MTA side.",
        (
            Option(
                "socket",
                "unix:/run/mailwarden/milter.sock",
                "str",
                "Where the milter listens, in Sendmail's notation: unix:PATH, or "
                "inet:PORT@HOST (inet6:PORT@HOST). Postfix's smtpd runs chrooted by default: "
                "a unix socket must then lie inside the chroot, or use inet.",
                check=_milter_socket,
            ),
            Option(
                "socket_mode",
                "0660",
                "str",
                "Permissions of the unix socket, in octal: the MTA's user (postfix, or "
                "Sendmail's root) must be able to connect.",
                check=_octal_mode,
            ),
            Option(
                "allow_remote",
                False,
                "bool",
                "Allow an inet socket on a non-loopback address. The protocol has no "
                "authentication: guard the port with a firewall.",
            ),
            Option(
                "max_message_size",
                50 * MiB,
                "size",
                "Largest message scanned; a larger one is refused with 552 at the end of "
                "DATA. Keep it at or below [daemon] stream_max_length.",
                minimum=1024,
            ),
            # the same meaning and defaults as the SMTP agents'
            *(o for o in _smtp_agent_options("", "", _host_port) if o.key in _MILTER_SHARED),
            Option(
                "max_sessions",
                200,
                "int",
                "MTA connections served at once; one more is closed at once and the MTA "
                "applies its default action (set it to tempfail).",
                minimum=1,
            ),
            Option(
                "timeout",
                600.0,
                "float",
                "Seconds the MTA may stay silent on a connection before it is closed "
                "(an idle SMTP client keeps the MTA silent too).",
                minimum=0.1,
            ),
            Option(
                "progress_interval",
                30.0,
                "float",
                "While a message is being scanned, tell the MTA every this many seconds "
                "that work is in progress, so its own milter timeout does not fire.",
                minimum=0.1,
            ),
            Option(
                "submission_daemons",
                [],
                "list[str]",
                "Values of the {daemon_name} macro (Sendmail's DaemonPortOptions Name=, "
                "Postfix's milter_macro_daemon_name) whose mail counts as sent by our own "
                "users, like an authenticated client: outbound unless all recipients are "
                'local. Example: ["MSA"].',
            ),
            Option(
                "mta_hold",
                False,
                "bool",
                "For a message the policy quarantines: also put it on the MTA's hold "
                "queue (SMFIR_QUARANTINE; Postfix's hold queue, Sendmail's quarantine) "
                "instead of discarding the MTA's copy. The quarantine store keeps its copy "
                "either way; release from one place only.",
            ),
        ),
    ),
    Section(
        "pop3_proxy",
        "The POP3 scanning proxy (`mailwarden pop3-proxy`), in front of the real POP3 "
        "server: every RETR and TOP is scanned; an infected message is replaced by a "
        "warning, one that cannot be scanned gets -ERR. docs/pop3-imap.md explains.",
        _download_proxy_options("127.0.0.1:1110", "127.0.0.1:1995", "127.0.0.1:110", 600.0),
    ),
    Section(
        "imap_proxy",
        "The IMAP scanning proxy (`mailwarden imap-proxy`), in front of the real IMAP "
        "server: every FETCH of message content is answered from the whole message, "
        "scanned once; an infected message is replaced by a warning, one that cannot be "
        "scanned is answered NO. docs/pop3-imap.md explains.",
        # IDLE clients stay connected for 29 minutes between commands (RFC 9051)
        _download_proxy_options("127.0.0.1:1143", "127.0.0.1:1993", "127.0.0.1:143", 1860.0),
    ),
    Section(
        "mda",
        "The delivery wrapper (`mailwarden mda -- ORIGINAL_MDA ...`, run by the MTA as its "
        "local delivery agent) and the filter (`mailwarden pipe`, for procmail, maildrop and "
        "Sieve). Exit codes follow sysexits(3): 75 (EX_TEMPFAIL) makes the MTA keep the "
        "mail and retry. docs/mda.md has the recipes for each MTA and MDA.",
        (
            Option(
                "daemon_socket",
                "",
                "str",
                "The daemon's unix socket. Empty: the [daemon] socket value.",
            ),
            Option(
                "spool_threshold",
                1 * MiB,
                "size",
                "Messages larger than this are read into an unlinked temporary file instead "
                "of memory while they arrive on standard input.",
                minimum=4096,
            ),
            Option(
                "connect_timeout",
                5.0,
                "float",
                "Seconds to connect to the daemon; past it the message is an 'error' "
                "(deferred by default).",
                minimum=0.1,
            ),
            Option(
                "scan_timeout",
                150.0,
                "float",
                "Seconds to wait for the daemon's verdict; past it the message is an 'error' "
                "(deferred by default). Keep it well below the MTA's limit for a delivery "
                "command (Postfix command_time_limit, 1000s).",
                minimum=0.1,
            ),
            Option(
                "agent",
                "auto",
                "str",
                "How mda and pipe scan: 'auto' hands the message to the resident agent "
                "(`mailwarden mda-agent`) when it answers on agent_socket and otherwise scans "
                "in the delivering process (slower; needs the store writable); 'require' "
                "answers exit_tempfail when the agent does not answer; 'off' always scans in "
                "the delivering process.",
                choices=("auto", "require", "off"),
            ),
            Option(
                "agent_socket",
                "/run/mailwarden/mda.sock",
                "str",
                "Unix socket of the mda agent: where `mailwarden mda-agent` listens and "
                "where mda and pipe look for it.",
            ),
            Option(
                "agent_socket_mode",
                "0660",
                "str",
                "Permissions of the agent's socket, in octal. Every user the MTA runs "
                "deliveries as must be able to connect; Postfix gives its delivery commands "
                "only the user's primary group (docs/mda.md).",
                check=_octal_mode,
            ),
            Option(
                "agent_socket_group",
                "mailwarden",
                "str",
                "Group that owns the agent's socket. Empty: the agent's primary group.",
            ),
            Option(
                "agent_timeout",
                180.0,
                "float",
                "Seconds mda and pipe wait for the agent's answer (a queue of other "
                "messages and the scan included) before they exit with exit_tempfail. Keep "
                "it above scan_timeout.",
                minimum=1.0,
            ),
            Option(
                "agent_max_requests",
                32,
                "int",
                "Messages the agent reads and judges at once; more wait for a turn. "
                "Memory is bounded by this number times the largest message.",
                minimum=1,
            ),
            *(
                Option(
                    key,
                    default,
                    "int",
                    doc,
                    minimum=0,
                    check=_exit_code if default == 0 else _failure_code,
                )
                for key, default, doc in _MDA_EXIT_CODES
            ),
        ),
    ),
    Section(
        "qmail",
        "`mailwarden qmail-queue`: a drop-in qmail-queue run through QMAILQUEUE (netqmail, "
        "notqmail) or in place of the renamed original. It scans each message, then runs the "
        "real qmail-queue with it, or exits with qmail-queue's own codes (31 refused, 71 "
        "deferred, 91 bad envelope). docs/qmail.md has the recipe.",
        (
            Option(
                "qmail_queue",
                "/var/qmail/bin/qmail-queue",
                "str",
                "The real qmail-queue, run with the message when the policy lets it pass. With "
                "QMAILQUEUE the original stays where it is; after renaming it, name the new path "
                "(such as /var/qmail/bin/qmail-queue.orig). --qmail-queue overrides it.",
            ),
            Option(
                "spool_threshold",
                1 * MiB,
                "size",
                "Messages larger than this are read into an unlinked temporary file instead "
                "of memory.",
                minimum=4096,
            ),
            *_daemon_use_options(
                "deferred by default: exit 71",
                "qmail-smtpd's timeoutsmtpd runs while it waits: keep this below it.",
            ),
        ),
    ),
    Section(
        "zmailer",
        "`mailwarden zmailer-filter`: the content filter program of ZMailer's smtpserver "
        "(PARAM contentfilter in smtpserver.conf). smtpserver starts it once and hands it "
        "the path of each received message file; it answers with one status line. "
        "docs/zmailer.md has the recipe.",
        (
            Option(
                "postoffice",
                "",
                "str",
                "Folder that relative message file paths start from. Empty: the current "
                "folder, which smtpserver sets to $POSTOFFICE before starting the filter.",
            ),
            *_daemon_use_options(
                "deferred by default: a 4xx reply",
                "smtpserver's client is waiting for the reply to DATA meanwhile.",
            ),
        ),
    ),
    Section(
        "serve",
        "The supervisor (`mailwarden serve`): starts the daemon, then the agents named "
        "here once the daemon answers, restarts a child that exits with growing delays, "
        "and stops them all on SIGTERM. docs/serve.md explains.",
        (
            Option(
                "agents",
                [],
                "list[str]",
                "Agents to start beside the daemon, by command name (such as "
                "smtp-filter; update-watch and update-mirror run `mailwarden update "
                "--watch` and `--serve-mirror`). Each reads its own section of this file. "
                "Empty: the daemon alone.",
                check=_check_agents,
            ),
            Option(
                "user",
                "mailwarden",
                "str",
                "User every long-running process runs as: serve and its children, and "
                "the daemon, each agent, web, metrics and update --watch/--serve-mirror "
                "started by hand. Started as root, each prepares the runtime folders, binds "
                "its listeners, then becomes this user (serve before starting anything); "
                "otherwise it stays who it is. A user that does not exist stops a process "
                'started as root; "root" keeps root (for development only).',
            ),
            Option(
                "group",
                "",
                "str",
                "Group they run as. Empty: the user's primary group. Supplementary groups "
                "are the user's own (from the group database).",
            ),
            Option(
                "restart_delay",
                1.0,
                "float",
                "Seconds before the first restart of a child that exited; each further "
                "exit in a row doubles it.",
                minimum=0.01,
            ),
            Option(
                "restart_delay_max",
                60.0,
                "float",
                "Longest delay between restarts.",
                minimum=0.01,
            ),
            Option(
                "stable_after",
                60.0,
                "float",
                "Seconds a child must run to count as stable: its next exit restarts it "
                "after restart_delay again.",
                minimum=0.1,
            ),
            Option(
                "start_failures",
                5,
                "int",
                "Exits in a row before a child was ready after which serve stops "
                "restarting it (the others keep running; SIGHUP tries it again).",
                minimum=1,
            ),
            Option(
                "agent_start_timeout",
                30.0,
                "float",
                "Seconds an agent may take to accept connections on its listen address "
                "after its start; past it, it is killed and counts as a failed start.",
                minimum=0.1,
            ),
            Option(
                "agent_settle_time",
                5.0,
                "float",
                "Seconds an agent that listens nowhere (update-watch) must keep running "
                "to count as started; one that exits sooner counts as a failed start.",
                minimum=0.1,
            ),
            Option(
                "daemon_start_timeout",
                300.0,
                "float",
                "Seconds the daemon may take to answer PING after its start (loading a "
                "large signature database takes a while); past it, it is killed and "
                "counts as a failed start.",
                minimum=1,
            ),
            Option(
                "stop_timeout",
                60.0,
                "float",
                "Seconds a child may take to stop after SIGTERM before it is killed "
                "(agents first, then the daemon).",
                minimum=0.1,
            ),
        ),
    ),
    _NOTIFY,
    _UPDATE,
    Section(
        "web",
        "The web interface (`mailwarden web`): dashboard, quarantine, events, daemon status "
        "and the effective configuration, behind a login; /metrics on the same listener. "
        "Off unless started by hand or named in [serve] agents. docs/web.md explains.",
        (
            Option(
                "listen",
                "127.0.0.1:8025",
                "str",
                "HOST:PORT it listens on. Keep it on loopback (and reach it through an SSH "
                "tunnel or a reverse proxy) unless TLS is configured. --listen overrides it.",
                check=_host_port,
            ),
            Option("username", "admin", "str", "The login name of the administrator."),
            Option(
                "password_hash",
                "",
                "str",
                "scrypt hash of the administrator's password, as printed by `mailwarden web "
                "passwd`. Empty: nobody can log in and `mailwarden web` refuses to start.",
                check=_password_hash,
                secret=True,
            ),
            Option(
                "secret_file",
                "/var/lib/mailwarden/web.key",
                "str",
                "Key that signs session cookies (created 0600 on first start). Replacing it "
                "logs everybody out; so does changing the password.",
            ),
            Option(
                "session_lifetime",
                28800,
                "int",
                "Seconds a login lasts; then the login page is shown again.",
                minimum=60,
            ),
            Option(
                "login_attempts",
                5,
                "int",
                "Failed logins from one client address within login_window after which its "
                "further attempts are refused (HTTP 429) until the window has passed.",
                minimum=1,
            ),
            Option(
                "login_window",
                300,
                "int",
                "Seconds over which failed logins are counted.",
                minimum=1,
            ),
            Option(
                "tls_certificate",
                "",
                "str",
                "PEM certificate (with its chain) to serve HTTPS; session cookies then carry "
                "the Secure flag. Empty: plain HTTP.",
            ),
            Option("tls_key", "", "str", "PEM private key of tls_certificate."),
            Option(
                "page_size",
                100,
                "int",
                "Quarantine entries and events shown per page.",
                minimum=1,
            ),
            Option(
                "dashboard_days",
                30,
                "int",
                "Days of history the dashboard's per-day charts cover (the per-hour charts "
                "cover the last 48 hours).",
                minimum=1,
            ),
            Option(
                "dashboard_max_events",
                200000,
                "int",
                "At most this many history events are read to draw the dashboard; older "
                "ones are left out of its charts.",
                minimum=100,
            ),
            Option(
                "daemon_socket",
                "",
                "str",
                "Daemon socket asked for the status page. Empty: the [daemon] socket value.",
            ),
        ),
    ),
    Section(
        "metrics",
        "Prometheus metrics. Long-running agents count every message in files under "
        "directory; /metrics on the web listener, or `mailwarden metrics` on its own "
        "listener, adds them up and asks the daemon for its figures. docs/metrics.md lists "
        "every metric.",
        (
            Option(
                "enabled",
                True,
                "bool",
                "Let the agents count messages, verdicts, actions and scan times. Agents run "
                "once per message (mda, qmail-queue) never count.",
            ),
            Option(
                "directory",
                "/run/mailwarden/metrics",
                "str",
                "Folder the agents write their figures to (prometheus-client's multiprocess "
                "files; created 0700 when its parent exists). Every agent and the exporter "
                "must name the same folder. Keep it on a tmpfs such as /run: it is emptied "
                "at boot, which Prometheus reads as a counter reset.",
            ),
            Option(
                "listen",
                "127.0.0.1:9425",
                "str",
                "HOST:PORT of the standalone exporter (`mailwarden metrics`, or 'metrics' in "
                "[serve] agents), for when the web interface is not running. --listen "
                "overrides it.",
                check=_host_port,
            ),
            Option(
                "daemon_timeout",
                2.0,
                "float",
                "Seconds to wait for the daemon's STATS during a scrape; past it the daemon "
                "is reported down (mailwarden_daemon_up 0).",
                minimum=0.1,
            ),
        ),
    ),
)

SECTION_BY_NAME: dict[str, Section] = {s.name: s for s in SECTIONS}
