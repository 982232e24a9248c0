"""ClamAV signature databases and the pattern matcher.

Public API::

    sigs = load_signatures([Path("/var/lib/clamav")], cache_dir=Path("/var/cache/mailwarden"))
    hits = sigs.match(payload, sniff(payload), container="zip")   # -> list[SigMatch]

:func:`load_signatures` reads ``.hdb .hsb .mdb .msb .ndb .ldb .fp .sfp .ign2``
files and ``.cvd/.cld/.cud`` containers (plus our bundled set, which has the
EICAR test signature), compiles every body pattern into one Hyperscan
database (or an Aho-Corasick fallback where Hyperscan is missing) and caches
the result on disk.  :class:`SignatureSet` answers per payload with clamd's
order of hits.  What is not supported is counted in
:attr:`LoadReport.skipped`, per reason.

SECURITY: database files are read with the caller's privileges and parsed
defensively; payloads are hostile and matched in bounded time and memory.
See each module for its own stance.
"""

from mailwarden.engine.signatures.loader import FORMAT_VERSION, MatcherKind, load_signatures
from mailwarden.engine.signatures.sigset import ENGINE, LoadReport, SigMatch, SignatureSet

__all__ = [
    "ENGINE",
    "FORMAT_VERSION",
    "LoadReport",
    "MatcherKind",
    "SigMatch",
    "SignatureSet",
    "load_signatures",
]
