//! Slot Release azure library.
