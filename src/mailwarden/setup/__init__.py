"""``mailwarden setup``: install and uninstall the MTA integration.

SECURITY: see ``plan`` (plans are data; commands run without a shell).
"""

from mailwarden.setup.plan import Command, Detected, FileEdit, Integration, Plan, SetupContext

__all__ = ["Command", "Detected", "FileEdit", "Integration", "Plan", "SetupContext"]
