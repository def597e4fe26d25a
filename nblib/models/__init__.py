"""The series' architectures, one module each; :mod:`nblib.models.registry` builds any by name."""
