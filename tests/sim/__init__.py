"""Tests of the simulated engine (smg.sim) as a real subprocess."""
