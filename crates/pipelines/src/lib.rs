//! Slot Release pipelines library.
