"""ESMTP details the agents share: MAIL/RCPT parameters, XFORWARD, xtext, replies.

Pure functions, no I/O::

    params = parse_params(["SIZE=1234", "BODY=8BITMIME", "ENVID=abc"])   # or raise
    attrs = parse_xforward("NAME=mx.example ADDR=192.0.2.1 HELO=[UNAVAILABLE]")
    xtext_decode("a+2Bb")                                               # "a+b"
    reply = parse_reply("451 4.3.0 try later")                          # SmtpReply

Parameter values keep their case (ENVID and ORCPT are case-sensitive), names
are upper-cased.

SECURITY: every input is a line from the network.  Parameters and XFORWARD
attributes are checked against fixed grammars and length limits; decoded
XFORWARD values are refused if they hold control characters, spaces or other
characters that could inject a header, as XFORWARD_README requires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailwarden.policy import SmtpReply

#: MAIL parameters we understand and pass on (RFC 1870, 6152, 6531, 3461)
MAIL_PARAMS = frozenset({"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID"})
#: RCPT parameters we understand and pass on (RFC 3461)
RCPT_PARAMS = frozenset({"NOTIFY", "ORCPT"})
#: XFORWARD attributes we accept (Postfix's XFORWARD_README, plus IDENT, the queue id)
XFORWARD_ATTRS = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
UNAVAILABLE = "[UNAVAILABLE]"

_PARAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_XTEXT_ESCAPE = re.compile(r"\+([0-9A-F]{2})")
_NOTIFY = frozenset({"SUCCESS", "FAILURE", "DELAY"})
_HEADER_SAFE = re.compile(r"^[\x21-\x7e]{1,255}$")
_UNSAFE_IN_VALUE = frozenset('<>()"\\,;:')


class ParamError(ValueError):
    """A parameter or XFORWARD attribute is malformed; ``str()`` is the reply text."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class MailParams:
    """Parsed MAIL FROM parameters."""

    size: int | None = None
    body: str | None = None
    smtputf8: bool = False
    ret: str | None = None
    envid: str | None = None

    def for_downstream(self, extensions: frozenset[str]) -> list[str]:
        """The parameters to give a downstream that announced ``extensions``."""
        out: list[str] = []
        if self.body and "8BITMIME" in extensions:
            out.append(f"BODY={self.body}")
        if self.smtputf8 and "SMTPUTF8" in extensions:
            out.append("SMTPUTF8")
        if "DSN" in extensions:
            if self.ret:
                out.append(f"RET={self.ret}")
            if self.envid:
                out.append(f"ENVID={self.envid}")
        return out


@dataclass(frozen=True, slots=True)
class RcptParams:
    notify: str | None = None
    orcpt: str | None = None

    def for_downstream(self, extensions: frozenset[str]) -> list[str]:
        if "DSN" not in extensions:
            return []
        out = []
        if self.notify:
            out.append(f"NOTIFY={self.notify}")
        if self.orcpt:
            out.append(f"ORCPT={self.orcpt}")
        return out


def split_params(words: list[str], known: frozenset[str]) -> dict[str, str | None]:
    """``["SIZE=10", "SMTPUTF8"]`` -> ``{"SIZE": "10", "SMTPUTF8": None}``; raise on junk."""
    out: dict[str, str | None] = {}
    for word in words:
        name, eq, value = word.partition("=")
        if not _PARAM_NAME.match(name) or (eq and not value) or len(word) > 600:
            raise ParamError("501 5.5.4 Syntax error in parameters")
        key = name.upper()
        if key not in known:
            raise ParamError(f"555 5.5.4 Unsupported parameter {key}")
        if key in out:
            raise ParamError(f"501 5.5.4 Duplicate parameter {key}")
        out[key] = value if eq else None
    return out


def parse_mail_params(words: list[str]) -> MailParams:
    raw = split_params(words, MAIL_PARAMS)
    size = raw.get("SIZE")
    if "SIZE" in raw and (size is None or not size.isdigit() or len(size) > 20):
        raise ParamError("501 5.5.4 Bad SIZE parameter")
    body = raw.get("BODY")
    if "BODY" in raw and (body is None or body.upper() not in ("7BIT", "8BITMIME")):
        raise ParamError("501 5.5.4 BODY must be 7BIT or 8BITMIME")
    if "SMTPUTF8" in raw and raw["SMTPUTF8"] is not None:
        raise ParamError("501 5.5.4 SMTPUTF8 takes no value")
    ret = raw.get("RET")
    if "RET" in raw and (ret is None or ret.upper() not in ("FULL", "HDRS")):
        raise ParamError("501 5.5.4 RET must be FULL or HDRS")
    envid = raw.get("ENVID")
    if "ENVID" in raw and (envid is None or not _valid_xtext(envid) or len(envid) > 100):
        raise ParamError("501 5.5.4 Bad ENVID parameter")
    return MailParams(
        size=int(size) if size else None,
        body=body.upper() if body else None,
        smtputf8="SMTPUTF8" in raw,
        ret=ret.upper() if ret else None,
        envid=envid,
    )


def parse_rcpt_params(words: list[str]) -> RcptParams:
    raw = split_params(words, RCPT_PARAMS)
    notify = raw.get("NOTIFY")
    if "NOTIFY" in raw:
        items = (notify or "").upper().split(",")
        if items != ["NEVER"] and (not items or not set(items) <= _NOTIFY):
            raise ParamError("501 5.5.4 NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY")
        notify = ",".join(items)
    orcpt = raw.get("ORCPT")
    if "ORCPT" in raw:
        kind, semi, addr = (orcpt or "").partition(";")
        if not semi or not kind or not addr or not _valid_xtext(addr) or len(orcpt or "") > 500:
            raise ParamError("501 5.5.4 Bad ORCPT parameter")
    return RcptParams(notify=notify, orcpt=orcpt)


def _valid_xtext(text: str) -> bool:
    if not all("!" <= ch <= "~" and ch != "=" for ch in text):
        return False
    escapes = text.count("+")
    return len(_XTEXT_ESCAPE.findall(text)) == escapes


def xtext_decode(text: str) -> str:
    """RFC 3461 xtext: ``+XX`` is the byte with hex value XX."""
    return _XTEXT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def xtext_encode(text: str) -> str:
    return "".join(ch if "!" <= ch <= "~" and ch not in "+=" else f"+{ord(ch):02X}" for ch in text)


def parse_xforward(arg: str) -> dict[str, str | None]:
    """XFORWARD attributes -> ``{"ADDR": "192.0.2.1", "HELO": None}`` (None: unavailable)."""
    words = arg.split()
    if not words:
        raise ParamError("501 5.5.4 Syntax: XFORWARD attribute=value...")
    out: dict[str, str | None] = {}
    for word in words:
        name, eq, value = word.partition("=")
        key = name.upper()
        if not eq or key not in XFORWARD_ATTRS:
            raise ParamError(f"501 5.5.4 Bad XFORWARD attribute name: {key[:40]}")
        if len(value) > 255:
            raise ParamError(f"501 5.5.4 XFORWARD {key} too long")
        if value.upper() == UNAVAILABLE or not value:
            out[key] = None
            continue
        decoded = xtext_decode(value)
        safe = _HEADER_SAFE.match(decoded) and not any(c in _UNSAFE_IN_VALUE for c in decoded)
        # IPv6 addresses carry colons: allowed in ADDR only
        ipv6 = key == "ADDR" and _HEADER_SAFE.match(decoded) and _ipv6ish(decoded)
        if not (safe or ipv6):
            raise ParamError(f"501 5.5.4 Bad XFORWARD {key} value")
        out[key] = decoded
    return out


def _ipv6ish(text: str) -> bool:
    body = text[5:] if text[:5].upper() == "IPV6:" else text
    return all(c in "0123456789abcdefABCDEF:.%" for c in body)


def parse_reply(text: str) -> SmtpReply:
    """``"451 4.3.0 text"`` (or a multi-line reply's first line) -> :class:`SmtpReply`."""
    first = text.splitlines()[0] if text else ""
    code_text, _, rest = first.partition(" ")
    code_text = code_text.split("-", 1)[0]
    code = int(code_text) if code_text.isdigit() and len(code_text) == 3 else 451
    status, _, message = rest.partition(" ")
    if not re.match(r"^[245]\.\d{1,3}\.\d{1,3}$", status):
        status, message = _default_status(code), rest
    return SmtpReply(code, status, message.strip() or "-")


def make_reply(code: int, message: str) -> SmtpReply:
    """A reply whose message may itself start with an enhanced status code."""
    return parse_reply(f"{code} {message}")


def _default_status(code: int) -> str:
    return {2: "2.0.0", 4: "4.0.0", 5: "5.0.0"}.get(code // 100, "4.0.0")


def is_authenticated_proto(proto: str | None) -> bool:
    """ESMTPA, ESMTPSA, LMTPA...: RFC 3848 protocol names of a SASL login."""
    return bool(proto) and proto is not None and proto.upper().endswith("A")
