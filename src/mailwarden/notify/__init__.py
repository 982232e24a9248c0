"""Notifications: tell the administrator, the recipients and (if enabled) the sender.

Public API::

    notifier = Notifier.from_config(config, host=hostname)   # None when disabled
    notifier.submit(message, verdict, action, quarantine_id=qid)
    TemplateBook(folder).check()                              # `config check`
    is_automatic(raw, sender)                                 # loop protection

Modules: ``settings`` ([notify]), ``plan`` (who is told, pure), ``loop``
(never about automatic mail), ``ratelimit`` (token bucket per address),
``context`` (safe template values), ``templates`` (sandboxed Jinja2, bundled
defaults in ``templates/``), ``compose`` (the message, via the email
package), ``send`` (SMTP or sendmail), ``notifier`` (background sending).
docs/notifications.md is the administrator's guide.

SECURITY: values from mail are cleaned before any template sees them and
headers are built by the email package, so a hostile subject cannot inject
a header; notifications carry the null envelope sender and
``Auto-Submitted``, so they cannot start a loop or cause backscatter; no
notice goes to a sender unless the configuration asks.  Needs no
privileges beyond reaching the SMTP server or running sendmail.
"""

from mailwarden.notify.loop import NOTIFICATION_HEADER, is_automatic
from mailwarden.notify.notifier import Notifier
from mailwarden.notify.plan import Notice, plan
from mailwarden.notify.ratelimit import RateLimiter
from mailwarden.notify.settings import NotifySettings
from mailwarden.notify.templates import TemplateBook, TemplateError

__all__ = [
    "NOTIFICATION_HEADER",
    "Notice",
    "Notifier",
    "NotifySettings",
    "RateLimiter",
    "TemplateBook",
    "TemplateError",
    "is_automatic",
    "plan",
]
