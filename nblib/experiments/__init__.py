"""One module per notebook's experiment (EDA, paper 1, paper 2, beyond the papers): the steps a
notebook calls, one function per step. Imports the floors below and :mod:`nblib.report`."""
