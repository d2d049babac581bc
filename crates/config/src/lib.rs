//! Slot Release config library.
