"""nblib: the library behind the boneage-repro notebook series.

Import modules, not names: ``from nblib import data, pipeline, training``.
"""

__version__ = "0.1.0"
