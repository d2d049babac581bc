//! Slot Release emulator library.
