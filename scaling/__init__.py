"""scaling: measure and predict the critical batch size of language-model pre-training."""

__version__ = "0.1.0"
