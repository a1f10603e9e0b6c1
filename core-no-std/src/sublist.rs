//! The subscription index (filled in by the sublist work).
