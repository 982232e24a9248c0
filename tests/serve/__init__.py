"""Tests of the supervisor (``mailwarden serve``) with real processes."""
