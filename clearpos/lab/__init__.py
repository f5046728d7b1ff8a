"""``clearpos.lab`` — tools to reproduce what breaks in the field.

:mod:`clearpos.lab.faultproxy` puts real network faults (dropped requests and
answers, delays, connections cut mid-frame, duplicates) between a terminal and
a host. The test suite, ``clearpos demo`` and the fault lab all use it.
"""
