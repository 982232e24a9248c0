"""MIME: the mail splitter, the text extractor (uuencode, data: URIs) and header helpers.

Public API::

    extract_mail(obj, ctx) -> Iterator[Child]     # FileKind.MAIL
    extract_text(obj, ctx) -> Iterator[Child]     # FileKind.TEXT and FileKind.HTML
    parse_headers(block) -> [(name, value)]
    header_params(value) -> (main value, {param: value})
    decode_rfc2047(value) -> str
    safe_label(name) -> str                       # a file name fit for a path label

SECURITY: everything here reads hostile input and needs no privileges; see
each module for its bounds.
"""

from mailwarden.engine.mime.headers import decode_rfc2047, header_params, parse_headers
from mailwarden.engine.mime.split import extract_mail, safe_label
from mailwarden.engine.mime.text import extract_text

__all__ = [
    "decode_rfc2047",
    "extract_mail",
    "extract_text",
    "header_params",
    "parse_headers",
    "safe_label",
]
