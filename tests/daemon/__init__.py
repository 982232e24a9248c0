"""Tests of the scanning daemon (``mailwarden.daemon``), one module per source module."""
