"""Helpers of gati 0.0.3 that user code may have imported."""
