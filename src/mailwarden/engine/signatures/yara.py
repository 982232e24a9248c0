"""YARA rules, compiled and run by yara-x.

Usage::

    rules = YaraRules.load([Path("/etc/mailwarden/yara")])  # files or directories
    names = rules.match(obj.data)                          # matching rule names
    blob = rules.serialize()                               # for the compiled-database cache
    rules = YaraRules.deserialize(blob)

``load`` takes ``.yar``/``.yara`` files and directories of them (not recursive,
in name order).  All files share one namespace, so a rule name means the same
thing wherever it was defined and ``match`` returns plain rule identifiers; a
name defined twice is a compile error.  Every compile error is reported as a
:class:`~mailwarden.errors.SignatureError` naming the file and line.

yara-x scans only ``bytes``: a spooled ``mmap`` is copied once before the scan,
up to ``max_scan_bytes`` (the part beyond is not scanned, like ClamAV's
MaxScanSize).  A scan that runs past ``timeout`` seconds raises
:class:`~mailwarden.engine.limits.LimitExceeded`, which the walker reports as
unscanned.

SECURITY: rule files are trusted configuration written by the administrator,
read with the daemon's privileges; ``include`` directives resolve relative to
the including file's directory.  Scanned data is untrusted and only ever
handed to yara-x, which bounds each scan by the timeout.  ``deserialize`` must
only be given blobs this class wrote (the engine's own cache, keyed by the
rule files' digest).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yara_x

from mailwarden.engine.limits import LimitExceeded
from mailwarden.engine.objects import Buffer
from mailwarden.errors import ScanError, SignatureError

RULE_SUFFIXES = frozenset({".yar", ".yara"})
DEFAULT_TIMEOUT = 10
DEFAULT_MAX_SCAN_BYTES = 100 * 1024 * 1024


def _rule_files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.iterdir() if p.suffix.lower() in RULE_SUFFIXES and p.is_file()
            )
        else:
            yield path


def _first_error(compiler: yara_x.Compiler, fallback: str, file: str) -> SignatureError:
    errors: list[dict[str, Any]] = list(compiler.errors())
    if not errors:
        return SignatureError(fallback, file=file)
    err = errors[0]
    line = err.get("line")
    for label in err.get("labels", ()):
        # an error inside an included file is located by the label
        if label.get("code_origin"):
            file, line = str(label["code_origin"]), label.get("line", line)
            break
    return SignatureError(str(err.get("title", fallback)), file=file, line=line)


def _compile(files: Sequence[Path]) -> yara_x.Rules:
    compiler = yara_x.Compiler()
    for path in files:
        name = str(path)
        try:
            source = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise SignatureError(f"cannot read: {exc.strerror or exc}", file=name) from exc
        except UnicodeDecodeError as exc:
            raise SignatureError("rule file is not UTF-8", file=name) from exc
        compiler.add_include_dir(str(path.parent))
        try:
            compiler.add_source(source, origin=name)
        except yara_x.CompileError as exc:
            raise _first_error(compiler, str(exc).splitlines()[0], name) from exc
    return compiler.build()


class YaraRules:
    """A compiled YARA rule set, safe to share between threads."""

    def __init__(
        self,
        rules: yara_x.Rules,
        *,
        timeout: int = DEFAULT_TIMEOUT,
        max_scan_bytes: int = DEFAULT_MAX_SCAN_BYTES,
    ) -> None:
        self._rules = rules
        self.timeout = timeout
        self.max_scan_bytes = max_scan_bytes
        self.rule_count: int = sum(1 for _ in rules)
        # a yara-x Scanner holds per-scan state, so each thread gets its own
        self._local = threading.local()

    @classmethod
    def load(
        cls,
        paths: Sequence[Path],
        *,
        timeout: int = DEFAULT_TIMEOUT,
        max_scan_bytes: int = DEFAULT_MAX_SCAN_BYTES,
    ) -> YaraRules:
        """Compile the rule files in ``paths``; raise SignatureError on the first error."""
        files = list(_rule_files(paths))
        return cls(_compile(files), timeout=timeout, max_scan_bytes=max_scan_bytes)

    def _scanner(self) -> yara_x.Scanner:
        scanner: yara_x.Scanner | None = getattr(self._local, "scanner", None)
        if scanner is None:
            scanner = yara_x.Scanner(self._rules)
            scanner.set_timeout(self.timeout)
            self._local.scanner = scanner
        return scanner

    def match(self, data: Buffer) -> list[str]:
        """Names of the rules that match ``data``, in rule-set order."""
        if self.rule_count == 0:
            return []
        payload = data[: self.max_scan_bytes] if len(data) > self.max_scan_bytes else data
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        try:
            results = self._scanner().scan(payload)
        except yara_x.TimeoutError as exc:
            raise LimitExceeded(f"limit: YARA scan time over {self.timeout} s") from exc
        except yara_x.ScanError as exc:
            raise ScanError(f"YARA scan failed: {exc}") from exc
        return [rule.identifier for rule in results.matching_rules]

    def serialize(self) -> bytes:
        """The compiled rules as bytes, for :meth:`deserialize`."""
        out = io.BytesIO()
        self._rules.serialize_into(out)
        return out.getvalue()

    @classmethod
    def deserialize(
        cls,
        data: bytes,
        *,
        timeout: int = DEFAULT_TIMEOUT,
        max_scan_bytes: int = DEFAULT_MAX_SCAN_BYTES,
    ) -> YaraRules:
        """Rules from :meth:`serialize`; SignatureError when ``data`` is not such a blob."""
        try:
            rules = yara_x.Rules.deserialize_from(io.BytesIO(data))
        except (OSError, ValueError) as exc:
            raise SignatureError(f"not a compiled YARA rule set: {exc}") from exc
        return cls(rules, timeout=timeout, max_scan_bytes=max_scan_bytes)
