"""Fault injection for the sandbox: a misbehaving endpoint (``proxy``), kills at random
points of a job (``sitecustomize``, loaded into the attempts a test chose) and the harness
that drives bursts, races and kills through the flow and counts what survived (``harness``).
"""
