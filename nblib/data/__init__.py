"""Data: RSNA's label tables, the image checks, splits, decoding and feeding, preprocessing, DICOM,
and the synthetic hand phantom. Imports only :mod:`nblib.core`."""
