"""Tests of the interception agents (``mailwarden.intercept``), Postfix end to end included."""
