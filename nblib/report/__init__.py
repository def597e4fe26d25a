"""Output: the papers' reference numbers, tables, figures, the reproduction report and the run's
summary and index. Reads result files; imports :mod:`nblib.train`, :mod:`nblib.data` and
:mod:`nblib.core`."""
