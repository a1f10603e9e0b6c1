//! INFO and CONNECT JSON bodies (filled in by the json work).
