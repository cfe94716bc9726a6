//! # vecfmt-convert
//!
//! Conversion between `.vfm` and the foreign formats: the format registry (a format from a
//! path or a name), [`ConvertOptions`], `open_source` and `create_sink`, and the HDF5
//! child-process sandbox, so that a crash inside the HDF5 C library kills neither the CLI
//! nor a Python interpreter.
