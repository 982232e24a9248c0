"""mailwarden: an antivirus gateway for Linux mail servers.

The three contracts every part shares are exported here: a :class:`Message`
goes in, the engine returns a :class:`Verdict`, the policy turns it into an
action.  Subsystems: ``engine`` (scanning), ``config``, ``cli``.

SECURITY: importing the package has no side effects and needs no privileges.
"""

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
