"""MAIL/RCPT parameters, XFORWARD attributes, xtext and replies."""

from __future__ import annotations

import pytest

from mailwarden.intercept.esmtp import (
    MailParams,
    ParamError,
    RcptParams,
    make_reply,
    parse_mail_params,
    parse_rcpt_params,
    parse_xforward,
    xtext_decode,
    xtext_encode,
)
from mailwarden.intercept.handler import AUTHENTICATED, build_message
from mailwarden.intercept.server import AgentEnvelope, _split_address
from mailwarden.intercept.spool import MessageSpool


def test_mail_params_keep_case_of_values() -> None:
    p = parse_mail_params(["SIZE=10", "body=8bitmime", "SMTPUTF8", "RET=hdrs", "ENVID=AbC+2B1"])
    assert p == MailParams(size=10, body="8BITMIME", smtputf8=True, ret="HDRS", envid="AbC+2B1")
    assert p.for_downstream(frozenset({"8BITMIME", "DSN"})) == [
        "BODY=8BITMIME",
        "RET=HDRS",
        "ENVID=AbC+2B1",
    ]
    assert p.for_downstream(frozenset()) == []


@pytest.mark.parametrize(
    "words",
    [
        ["SIZE=x"],
        ["BODY=BINARYMIME"],
        ["AUTH=<>"],
        ["SIZE=1", "SIZE=2"],
        ["RET=ALL"],
        ["ENVID=a b"],
    ],
)
def test_bad_mail_params(words: list[str]) -> None:
    with pytest.raises(ParamError):
        parse_mail_params(words)


def test_rcpt_params() -> None:
    p = parse_rcpt_params(["NOTIFY=success,failure", "ORCPT=rfc822;Bob@Example.org"])
    assert p == RcptParams(notify="SUCCESS,FAILURE", orcpt="rfc822;Bob@Example.org")
    assert p.for_downstream(frozenset({"DSN"})) == [
        "NOTIFY=SUCCESS,FAILURE",
        "ORCPT=rfc822;Bob@Example.org",
    ]
    for bad in (["NOTIFY=NEVER,SUCCESS"], ["ORCPT=nosemicolon"], ["XYZ=1"]):
        with pytest.raises(ParamError):
            parse_rcpt_params(bad)


def test_xforward_attributes() -> None:
    attrs = parse_xforward("NAME=mx.example ADDR=IPV6:2001:db8::1 HELO=[UNAVAILABLE] IDENT=4XkQ")
    assert attrs == {
        "NAME": "mx.example",
        "ADDR": "IPV6:2001:db8::1",
        "HELO": None,
        "IDENT": "4XkQ",
    }
    for bad in ("", "LOGIN=x", "NAME=a+0Ab", "HELO=<x>", "NAME=" + "a" * 300):
        with pytest.raises(ParamError):
            parse_xforward(bad)


def test_xtext_round_trip() -> None:
    assert xtext_decode(xtext_encode("a+b=c d")) == "a+b=c d"


def test_replies() -> None:
    assert str(make_reply(451, "4.3.0 try later")) == "451 4.3.0 try later"
    assert str(make_reply(550, "no such user")) == "550 5.0.0 no such user"


def test_addresses() -> None:
    assert _split_address("<a@b> SIZE=1") == ("a@b", ["SIZE=1"])
    assert _split_address("<>") == ("", [])
    assert _split_address("<@relay:a@b>") == ("a@b", [])
    assert _split_address("<a b@c>")[0] is None
    assert _split_address("<a@b>SIZE=1")[0] is None


def test_message_from_xforward() -> None:
    env = AgentEnvelope()
    env.mail_from = "s@remote.example"
    env.rcpt_tos = ["u@test.example"]
    env.xforward = {
        "ADDR": "192.0.2.7",
        "NAME": "mx.remote.example",
        "HELO": "remote",
        "PROTO": "ESMTPSA",
        "IDENT": "Q1",
    }
    env.spool = MessageSpool(1024)
    env.spool.write(b"Subject: x\r\n\r\n")
    msg = build_message(env, agent="smtp-filter")
    e = msg.envelope
    assert (e.client_address, e.client_name, e.helo, e.queue_id) == (
        "192.0.2.7",
        "mx.remote.example",
        "remote",
        "Q1",
    )
    assert e.auth_user == AUTHENTICATED
    env.xforward = {"SOURCE": "LOCAL"}
    assert build_message(env, agent="smtp-filter").envelope.client_address == "127.0.0.1"
    env.xforward = {}
    assert build_message(env, agent="smtp-filter").envelope.client_address is None


def test_dot_stuffing_for_the_downstream() -> None:
    from mailwarden.intercept.downstream import dot_stuff

    assert dot_stuff(b".a\r\nb\r\n.c\r\n") == b"..a\r\nb\r\n..c\r\n"
    assert dot_stuff(b"a\nb\rc") == b"a\r\nb\r\nc\r\n"
    assert dot_stuff(b"") == b""
