"""Reusable test pieces: a real host process on loopback and a TCP fault proxy.

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, so test modules import
``support.hostproc`` and ``support.faultproxy``.
"""
