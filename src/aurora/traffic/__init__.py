"""Simulated tenant traffic: a pure plan and an open-loop HTTP runner."""
