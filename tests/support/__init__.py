"""Helpers shared by the test suite and the benchmarks: real tools, generated data.

Tests import them as ``support.<module>`` (the ``tests`` folder is on ``sys.path``
through ``tests/conftest.py``); ``bench/`` puts the same folder on its path.

SECURITY: test-only code.  It starts local processes on private unix sockets in
fresh temporary folders and never listens on a network address unless asked.
"""
