"""mailwarden: an antivirus gateway for Linux mail servers.

The three contracts every part shares are exported here: a :class:`Message`
goes in, the engine returns a :class:`Verdict`, the policy turns it into an
action.  Subsystems: ``engine`` (scanning), ``config``, ``cli``.

The exports load on first use: the ``mailwarden`` command imports this
package before every subcommand, and ``mailwarden mda``, started by the MTA
for each delivery, must not pay for modules it does not use.

SECURITY: importing the package has no side effects and needs no privileges.
"""

from __future__ import annotations

# typing itself costs a few milliseconds; mypy reads this name as typing's
TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailwarden.message import Direction, Envelope, Message, Point
    from mailwarden.verdict import Category, Finding, Status, Verdict

__version__ = "0.1.0"

__all__ = [
    "Category",
    "Direction",
    "Envelope",
    "Finding",
    "Message",
    "Point",
    "Status",
    "Verdict",
    "__version__",
]

_HOME = {
    "Direction": "mailwarden.message",
    "Envelope": "mailwarden.message",
    "Message": "mailwarden.message",
    "Point": "mailwarden.message",
    "Category": "mailwarden.verdict",
    "Finding": "mailwarden.verdict",
    "Status": "mailwarden.verdict",
    "Verdict": "mailwarden.verdict",
}


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'mailwarden' has no attribute {name!r}")
    from importlib import import_module  # on first use only

    return getattr(import_module(home), name)
