"""The walker: depth-first, streaming traversal of a message's object tree.

:func:`walk` yields every :class:`ScanObject` with its sniffed kind, starting
with the raw message itself, then each child the extractor for its kind
produces, to any depth within the limits.  Extractors are generators, and the
walker keeps one open generator per level, so at any time only the current path
of the tree is held, never a whole archive's members.

Failures are contained where they happen: an extractor that raises on
malformed input is noted as a warning and its siblings and parents are still
scanned; a :class:`LimitExceeded` stops its subtree (or the whole walk when it
is fatal) and is noted as the reason the message is ``unscanned``.

SECURITY: the only defence against hostile structure lives here and in
``limits.py``: depth, count, bytes and time are checked for every object.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailwarden.engine.filetype import FileKind, looks_like_mail, sniff
from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.objects import Child, ScanObject, WalkContext
from mailwarden.engine.unpack import extractor_for


def walk(
    root: ScanObject, ctx: WalkContext, *, as_mail: bool = False
) -> Iterator[tuple[ScanObject, FileKind]]:
    """Yield ``(object, kind)`` for the root and every descendant, depth first.

    ``as_mail``: the root is known to be a message (it came from an MTA), so
    text that does not look like one by its first lines is parsed as mail anyway,
    and so is anything that opens with a header block, whatever a NUL, control
    bytes or a magic-looking header name made sniffing say.
    The caller may stop early (``break``); the open generators are closed then.
    """
    root_kind = sniff(root.data)
    text_like = root_kind in (FileKind.TEXT, FileKind.HTML, FileKind.EMPTY)
    if as_mail and root_kind is not FileKind.MAIL and (text_like or looks_like_mail(root.data)):
        root_kind = FileKind.MAIL
    yield root, root_kind
    stack: list[tuple[ScanObject, FileKind, Iterator[Child]]] = []
    _push(stack, root, root_kind, ctx)
    try:
        while stack:
            parent, parent_kind, children = stack[-1]
            try:
                ctx.budget.check_time()
                child = next(children)
            except StopIteration:
                stack.pop()
                continue
            except LimitExceeded as exc:
                stack.pop()
                ctx.unscanned(parent.part, exc.reason)
                if exc.fatal:
                    return
                continue
            except Exception as exc:
                stack.pop()
                ctx.warn(parent.part, f"malformed {parent_kind.value}: {type(exc).__name__}: {exc}")
                continue
            try:
                ctx.budget.add_file()
            except LimitExceeded as exc:
                ctx.unscanned(parent.part, exc.reason)
                return
            obj = ScanObject(
                data=child.data,
                path=(*parent.path, child.label),
                name=child.name,
                content_type=child.content_type,
                depth=parent.depth + 1,
                parent_kind=parent_kind.value,
                meta=child.meta,
            )
            kind = sniff(obj.data)
            if (
                kind is not FileKind.MAIL
                and (child.content_type or "").lower().startswith("message/")
                and looks_like_mail(obj.data)
            ):
                # an attached message is mail whatever its header bytes made sniffing say
                kind = FileKind.MAIL
            yield obj, kind
            _push(stack, obj, kind, ctx)
    finally:
        for _, _, children in stack:
            close = getattr(children, "close", None)
            if close is not None:
                close()


def _push(
    stack: list[tuple[ScanObject, FileKind, Iterator[Child]]],
    obj: ScanObject,
    kind: FileKind,
    ctx: WalkContext,
) -> None:
    extractor = extractor_for(kind)
    if extractor is None:
        return
    try:
        ctx.budget.check_depth(obj.depth + 1)
    except LimitExceeded as exc:
        ctx.unscanned(obj.part, exc.reason)
        return
    stack.append((obj, kind, iter(extractor(obj, ctx))))
